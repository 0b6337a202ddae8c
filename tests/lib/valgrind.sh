# valgrind memcheck as the test wrapper (tests/lib/wrapper.sh): the one
# definition of its flags, used by scripts/valgrind.sh and by the harness
# self-test (tests/harness), so that what the self-test proves holds for the
# real runs.  Source this file.
#
#   primus_valgrind_wrapper SRC   print a PRIMUS_TEST_WRAPPER value; SRC is the
#                                 source tree (for tests/valgrind.supp)
#   PRIMUS_VALGRIND_STATUS        the exit status of a run with findings (99)
#
# Flags, and why:
#   --error-exitcode=99        a finding changes the exit status to one no
#                              program under test uses, which the wrapper
#                              records (tests that expect a failure still fail)
#   --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
#                              a block nothing points to any more is an error;
#                              "still reachable" (OpenSSL's and SoftHSM's
#                              process-lifetime tables) and "possibly lost"
#                              (interior pointers in their caches) are not
#   --track-fds=no             descriptors are not memory; openssl and SoftHSM
#                              keep some open by design
#   --child-silent-after-fork=no  provider_signload --fork signs in the child:
#                              its findings count (%p: each process its own log)
#   --keep-debuginfo=yes       OpenSSL unloads primus.so before the leak check
#                              at exit; without this our frames show as "???"
#   --num-callers=40           provider -> core -> module stacks are deep
#   --gen-suppressions=all     every report carries a ready suppression, to be
#                              used ONLY for documented third-party findings
#   --log-file=%q{PRIMUS_WRAP_LOG}.%p   reports out of the stderr that tests
#                              inspect (tests/lib/wrapper.sh)
#   -q                         an empty log when there is nothing to report
PRIMUS_VALGRIND_STATUS=99

primus_valgrind_wrapper() {
    local src=$1
    case "$src" in
        *[[:space:]]*)
            # the wrapper is split on blanks (tests/lib/wrapper.sh)
            echo "primus_valgrind_wrapper: the source path must not contain blanks: $src" >&2
            return 1
            ;;
    esac
    printf '%s ' valgrind --tool=memcheck -q "--error-exitcode=$PRIMUS_VALGRIND_STATUS" \
        --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --track-fds=no --child-silent-after-fork=no --keep-debuginfo=yes --num-callers=40 \
        --gen-suppressions=all "--suppressions=$src/tests/valgrind.supp" \
        '--log-file=%q{PRIMUS_WRAP_LOG}.%p'
    echo
}
