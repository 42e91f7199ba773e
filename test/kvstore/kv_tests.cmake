# The KV state machine, its codec, pools and sharding, checkpoints (docs/kv.md).
squall_test(test_kv
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_codec_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/kv_shard_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/kv_state_machine_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/kv_checkpoint_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/kv_durability_test.cpp
  LIBS squall_kvstore)
