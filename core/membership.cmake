# Membership: view change with ragged trim, joins and leaves, state transfer (docs/core.md,
# "View change").
target_sources(squall_core PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/membership.cpp
  ${CMAKE_CURRENT_LIST_DIR}/membership_decide.cpp
  ${CMAKE_CURRENT_LIST_DIR}/restart.cpp
  ${CMAKE_CURRENT_LIST_DIR}/state_transfer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/view_change.cpp
  ${CMAKE_CURRENT_LIST_DIR}/view_change_joins.cpp
  ${CMAKE_CURRENT_LIST_DIR}/view_log.cpp)
