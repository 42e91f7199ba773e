# Membership and view change: the view log format and store, the membership state machine.
squall_test(test_core_membership
  SOURCES membership_view_log_test.cpp membership_protocol_test.cpp membership_codec_test.cpp
          restart_test.cpp
  LIBS squall_core)
