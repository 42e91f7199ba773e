# squalld's tests (docs/consistency.md): the replicated backend over an in-process group.
squall_test(test_daemon_backend
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_backend_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/daemon_fake_group.cpp
          ${CMAKE_CURRENT_LIST_DIR}/daemon_replica_watch_test.cpp
  LIBS squall_server)

# End to end: squalld processes on loopback (the binary's path is compiled in).
if(TARGET squalld)
  squall_test(test_daemon_e2e
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_e2e_test.cpp
            ${CMAKE_CURRENT_LIST_DIR}/daemon_cluster.cpp
            ${PROJECT_SOURCE_DIR}/test/server/sse_client.cpp
            ${PROJECT_SOURCE_DIR}/test/server/test_client.cpp
    LIBS Boost::boost nlohmann_json::nlohmann_json fmt::fmt Threads::Threads)
  target_compile_definitions(test_daemon_e2e PRIVATE SQUALLD_PATH="$<TARGET_FILE:squalld>")
  add_dependencies(test_daemon_e2e squalld)
endif()

# Layouts where no node serves every shard: merged lists, forwarded watch streams, watchers
# across kill -9 and restarts. Clusters with failure timeouts: run alone.
if(TARGET squalld)
  add_executable(test_daemon_shards
    ${CMAKE_CURRENT_LIST_DIR}/daemon_shards_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/daemon_cluster.cpp
    ${PROJECT_SOURCE_DIR}/test/server/sse_client.cpp
    ${PROJECT_SOURCE_DIR}/test/server/test_client.cpp)
  target_link_libraries(test_daemon_shards PRIVATE Boost::boost nlohmann_json::nlohmann_json
    fmt::fmt Threads::Threads squall_catch_main)
  target_include_directories(test_daemon_shards PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(test_daemon_shards PRIVATE SQUALLD_PATH="$<TARGET_FILE:squalld>")
  add_dependencies(test_daemon_shards squalld)
  catch_discover_tests(test_daemon_shards TEST_PREFIX "test_daemon_shards: "
    PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
endif()
