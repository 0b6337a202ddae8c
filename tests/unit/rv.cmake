# PKCS#11 return-code and mechanism names, operator advice, member-fault
# classification (p11core/rv.c).
primus_unit_test(test_rv SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_rv.c LIBS p11core)
