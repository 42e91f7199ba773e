# squalld's tests (docs/consistency.md): the replicated backend over an in-process group.
squall_test(test_daemon_backend
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_backend_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/daemon_fake_group.cpp
  LIBS squall_server)
