# The watch hub (docs/watch.md): part of squall_kvstore.
target_sources(squall_kvstore PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/watch_cursor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/watch_history.cpp
  ${CMAKE_CURRENT_LIST_DIR}/watch_hub.cpp
  ${CMAKE_CURRENT_LIST_DIR}/watch_index.cpp
  ${CMAKE_CURRENT_LIST_DIR}/watch_watcher.cpp)
