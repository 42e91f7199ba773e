# The node program and the driver library: shared with bench/sst and bench/rdmc, which include
# this file themselves when the tests are not built.
include_guard(GLOBAL)
set(SQUALL_SST_INTEGRATION_DIR ${CMAKE_CURRENT_LIST_DIR})

add_library(squall_sst_driver STATIC
  ${SQUALL_SST_INTEGRATION_DIR}/sst_process.cpp
  ${SQUALL_SST_INTEGRATION_DIR}/sst_cluster.cpp)
target_include_directories(squall_sst_driver PUBLIC ${SQUALL_SST_INTEGRATION_DIR}
                                                    ${PROJECT_SOURCE_DIR})
target_link_libraries(squall_sst_driver PUBLIC squall_common nlohmann_json::nlohmann_json)

add_executable(sst_node
  ${SQUALL_SST_INTEGRATION_DIR}/sst_node.cpp
  ${SQUALL_SST_INTEGRATION_DIR}/sst_node_io.cpp
  ${SQUALL_SST_INTEGRATION_DIR}/sst_node_workloads.cpp)
target_link_libraries(sst_node PRIVATE squall_sst nlohmann_json::nlohmann_json CLI11::CLI11)

add_executable(rdmc_node
  ${SQUALL_SST_INTEGRATION_DIR}/rdmc_node.cpp
  ${SQUALL_SST_INTEGRATION_DIR}/rdmc_node_parts.cpp
  ${SQUALL_SST_INTEGRATION_DIR}/rdmc_node_workloads.cpp
  ${SQUALL_SST_INTEGRATION_DIR}/sst_node_io.cpp)
target_link_libraries(rdmc_node PRIVATE squall_rdmc nlohmann_json::nlohmann_json CLI11::CLI11)
