# The KV state machine, pools and sharding, checkpoints (docs/kv.md): part of squall_kvstore,
# which implements core/'s StateMachine interface through them.
target_sources(squall_kvstore PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/checkpoint.cpp
  ${CMAKE_CURRENT_LIST_DIR}/kv_codec.cpp
  ${CMAKE_CURRENT_LIST_DIR}/kv_state_machine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/kv_sync.cpp
  ${CMAKE_CURRENT_LIST_DIR}/kv_transfer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/shard.cpp)
target_link_libraries(squall_kvstore PUBLIC squall_core squall_config)
