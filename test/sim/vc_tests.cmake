# View-change simulations (docs/core.md, "View change"; "Joins, leaves and state transfer").
squall_test(test_sim_vc
  SOURCES log_state_machine.cpp vc_cluster.cpp vc_checks.cpp vc_restart.cpp vc_sim_test.cpp
          vc_join_test.cpp vc_restart_test.cpp
  LIBS squall_core)
