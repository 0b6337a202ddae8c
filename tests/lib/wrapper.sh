# Running the programs under test through a checking wrapper (valgrind).
# Source this file; assert.sh and openssl_conf.sh do, so every test script
# that uses either of them honours the wrapper without changes.
#
#   PRIMUS_TEST_WRAPPER         command prefix, split on blanks, e.g.
#                               "valgrind --tool=memcheck --error-exitcode=99 ..."
#                               (scripts/valgrind.sh sets it).  Unset or empty:
#                               every program runs as it is (the default).
#   PRIMUS_TEST_WRAPPER_STATUS  the exit status by which the wrapper reports its
#                               findings (default 99, valgrind's --error-exitcode
#                               in scripts/valgrind.sh)
#   PRIMUS_TEST_WRAPPED         basenames of the programs under test, the only
#                               ones wrapped (default "openssl primusctl
#                               provider_signload key_sizes decoder_chains": the
#                               programs that load the provider); helpers such as pkcs11-tool,
#                               softhsm2-util, python3 or curl are not ours to check
#   PRIMUS_TEST_WRAPPER_LOGS    directory for the wrapper's reports, kept (default:
#                               a directory per test script, removed at its end)
#   PRIMUS_WRAP_LOG             set by primus_wrap for each wrapped run: a path
#                               prefix, unique to the run, for the wrapper's report,
#                               so that the report neither mixes with the stderr
#                               that tests inspect nor is lost with a background
#                               server's log; valgrind takes it as
#                               --log-file=%q{PRIMUS_WRAP_LOG}.%p (%p: a forked
#                               child writes its own file).  Files PRIMUS_WRAP_LOG*
#                               are shown when the run fails.
#
#   primus_wrap CMD...          run CMD, through the wrapper when CMD (after an
#                               `env` with its options and VAR=VALUE words) is a
#                               program under test.  A wrapped run that ends with
#                               the wrapper's status is recorded, because many
#                               runs are not checked for success: servers in the
#                               background, process substitutions, commands that
#                               are expected to fail anyway.
#   primus_wrapper_check        print the recorded runs; status 1 if there are any
#                               (assert.sh's run and finish call it, so a finding
#                               fails the test)
#
# The record is a file named after the test script's PID ($$ is the same in
# its subshells and background jobs), created only when there is something
# to record; assert.sh's finish and fail remove it.

: "${PRIMUS_TEST_WRAPPER_STATUS:=99}"
: "${PRIMUS_TEST_WRAPPED:=openssl primusctl provider_signload key_sizes decoder_chains}"
# Once per script (this file is sourced more than once; subshells keep the
# parent's record); the random part keeps a reused PID from meeting a record
# that a killed script left behind.
if [ "${_PRIMUS_WRAPPER_PID:-}" != "$$" ]; then
    _PRIMUS_WRAPPER_PID=$$
    _PRIMUS_WRAPPER_TMP=${TMPDIR:-/tmp}/primus-wrapper.$$.$RANDOM
    PRIMUS_WRAPPER_RECORD=$_PRIMUS_WRAPPER_TMP.record
    _PRIMUS_WRAP_SEQ=0
fi

# _primus_wrapped PROGRAM: is PROGRAM (a name or path) one of the programs under test?
_primus_wrapped() {
    local name=${1##*/} w
    for w in $PRIMUS_TEST_WRAPPED; do
        [ "$name" = "$w" ] && return 0
    done
    return 1
}

primus_wrap() {
    if [ -z "${PRIMUS_TEST_WRAPPER:-}" ] || [ $# -eq 0 ]; then
        "$@"
        return
    fi
    # Split "env [-i] [-u NAME] [NAME=VALUE]... PROGRAM ARGS" so that the
    # wrapper goes between env's part and the program: the variables must
    # reach the program, and valgrind passes its environment on.
    local -a pre=() wrapper
    local i=1 prog
    if [ "${1##*/}" = env ]; then
        pre=("$1")
        i=2
        while [ "$i" -le $# ]; do
            case "${!i}" in
                -u | --unset)
                    pre+=("${!i}")
                    i=$((i + 1))
                    pre+=("${!i}")
                    ;;
                -* | *=*) pre+=("${!i}") ;;
                *) break ;;
            esac
            i=$((i + 1))
        done
    fi
    prog=${!i:-}
    # Shell functions wrap what they run themselves (ossl, through
    # with_sanitizer_runtime) or run no program under test (plain: the
    # default provider's reference results).
    if [ -z "$prog" ] || [ "$(type -t "$prog")" = function ] || ! _primus_wrapped "$prog"; then
        "$@"
        return
    fi
    read -r -a wrapper <<<"$PRIMUS_TEST_WRAPPER"
    local logdir=${PRIMUS_TEST_WRAPPER_LOGS:-$_PRIMUS_WRAPPER_TMP.logs} log status=0
    mkdir -p "$logdir"
    # $BASHPID and a counter: unique also among background jobs and subshells
    _PRIMUS_WRAP_SEQ=$((_PRIMUS_WRAP_SEQ + 1))
    log=$logdir/$(basename "$0" .sh).$BASHPID.$_PRIMUS_WRAP_SEQ.${prog##*/}
    PRIMUS_WRAP_LOG=$log "${pre[@]}" "${wrapper[@]}" "${@:i}" || status=$?
    if [ "$status" -eq "$PRIMUS_TEST_WRAPPER_STATUS" ]; then
        {
            echo "${wrapper[0]##*/} reported errors (exit $status) in: ${*:i}"
            # the wrapper's report, if it wrote one (a parent and its forked children)
            cat "$log"* 2>/dev/null | head -n 200
        } >>"$PRIMUS_WRAPPER_RECORD"
        echo "primus_wrap: ${wrapper[0]##*/} reported errors (exit $status) in: ${*:i}; report: $log*" >&2
    fi
    return "$status"
}

primus_wrapper_check() {
    [ -s "$PRIMUS_WRAPPER_RECORD" ] || return 0
    cat "$PRIMUS_WRAPPER_RECORD"
    return 1
}

# primus_wrapper_cleanup: remove this script's record and its temporary reports
# (not PRIMUS_TEST_WRAPPER_LOGS); assert.sh's finish and fail call it.
primus_wrapper_cleanup() {
    rm -rf "$PRIMUS_WRAPPER_RECORD" "$_PRIMUS_WRAPPER_TMP.logs"
}
