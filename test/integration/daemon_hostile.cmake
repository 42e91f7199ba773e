# Hostile input against one real squalld process (raw sockets): bad requests get the
# contract's answers and change nothing. Each case starts its own daemon; run alone so its
# slow-client and connection-limit cases see an unloaded daemon.
if(TARGET squalld)
  add_executable(test_daemon_hostile
    ${CMAKE_CURRENT_LIST_DIR}/daemon_hostile_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/daemon_cluster.cpp)
  target_link_libraries(test_daemon_hostile PRIVATE Boost::boost nlohmann_json::nlohmann_json
    fmt::fmt Threads::Threads squall_catch_main)
  target_include_directories(test_daemon_hostile PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(test_daemon_hostile PRIVATE SQUALLD_PATH="$<TARGET_FILE:squalld>")
  add_dependencies(test_daemon_hostile squalld)
  catch_discover_tests(test_daemon_hostile TEST_PREFIX "test_daemon_hostile: "
    PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
endif()
