# Security end to end against real squalld processes: a joiner with the wrong cluster secret
# against a loaded 3-node cluster, and HTTPS with bearer tokens and a SIGHUP certificate
# reload. Certificates are made at test time with the openssl command.
if(TARGET squalld)
  add_executable(test_daemon_security
    ${CMAKE_CURRENT_LIST_DIR}/daemon_security_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/daemon_cluster.cpp
    ${PROJECT_SOURCE_DIR}/test/server/tls_util.cpp)
  target_link_libraries(test_daemon_security PRIVATE Boost::boost nlohmann_json::nlohmann_json
    fmt::fmt Threads::Threads OpenSSL::SSL OpenSSL::Crypto squall_catch_main)
  target_include_directories(test_daemon_security PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(test_daemon_security PRIVATE SQUALLD_PATH="$<TARGET_FILE:squalld>")
  add_dependencies(test_daemon_security squalld)
  catch_discover_tests(test_daemon_security TEST_PREFIX "test_daemon_security: "
    PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
endif()
