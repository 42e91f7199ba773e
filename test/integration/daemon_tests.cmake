# squalld's tests (docs/consistency.md): the replicated backend over an in-process group.
squall_test(test_daemon_backend
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_backend_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/daemon_fake_group.cpp
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
