# The replicated KV shard in the simulator (docs/kv.md, "Simulation").
squall_test(test_sim_kv
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_cluster.cpp
          ${CMAKE_CURRENT_LIST_DIR}/kv_sim_test.cpp
  LIBS squall_kvstore squall_core)
