# test_kvstore_watch: the watch hub (docs/watch.md).
squall_test(test_kvstore_watch
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/watch_cursor_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/watch_hub_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/watch_replay_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/watch_reset_test.cpp
  LIBS squall_kvstore)
