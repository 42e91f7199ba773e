# Simulated transport sources (deterministic, in-process, fault-injecting; docs/simulation.md).
target_sources(squall_fabric PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_transport.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_network.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_network_deliver.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_network_faults.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/sim_chaos.cpp)
