#!/usr/bin/env bash
# Run the bare-metal guest tests listed in firmware/tests/unittests.cfg.
#
#   scripts/run-firmware-tests.sh [-v] [NAME...]
#
#   NAME...   run only these tests (default: all, in file order)
#   -v        print each test's whole serial output, not only its verdict
#
# With a usable /dev/kvm (scripts/kvm-usable.sh) each test runs on
# build/minivmm directly. Without, L1 is booted ONCE through
# scripts/nested.sh with every test's images as its virtio disks, and a
# payload script runs all tests in turn with the static minivmm. Either way each image is made fresh (zeroed, or filled by
# `iotest --fill` for a :pattern disk) under build/firmware/img/, and each
# test's serial output is kept in build/firmware/logs/NAME.log.
#
# Prints one `PASS name (time)` or `FAIL name (why)` line per test and a
# summary; exits 0 if all passed, 1 if any failed, 2 on a setup error.
#
# Nested, a watchdog stops L1 if it shows no progress (no test started or
# ended) for longer than it should, and the tests it did not finish get one
# retry in a fresh L1: L1 under TCG has been seen to hang now and then, on
# no test in particular.
#
# Environment: MINIVMM, MINIVMM_STATIC, IOTEST, FW_DIR (default: the build
# tree), FW_CFG (another config), FW_MODE=kvm|nested (default: what
# scripts/kvm-usable.sh --mode says), FW_L1_SLACK_S (seconds past a test's
# timeout before L1 counts as hung; default 30). With NESTED_MONITOR set
# (scripts/nested.sh), a hung L1's CPU registers are saved first.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cfg=${FW_CFG:-$root/firmware/tests/unittests.cfg}
fw_dir=${FW_DIR:-$root/build/firmware}
minivmm=${MINIVMM:-$root/build/minivmm}
minivmm_static=${MINIVMM_STATIC:-$root/build/minivmm-static}
iotest=${IOTEST:-$root/build/guest/iotest}
img_dir=$fw_dir/img
log_dir=$fw_dir/logs

die() {
    echo "run-firmware-tests: $*" >&2
    exit 2
}

verbose=0
selected=()
for arg in "$@"; do
    case $arg in
    -v) verbose=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
    -*) die "unknown option '$arg' (try --help)" ;;
    *) selected+=("$arg") ;;
    esac
done

# ---- The configuration --------------------------------------------------------
names=()
declare -A t_file=() t_disks=() t_timeout=() t_bootargs=() t_extra=()

[[ -r $cfg ]] || die "cannot read $cfg"
lineno=0 cur=
while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [[ -z $line || $line == '#'* ]] && continue
    if [[ $line =~ ^\[([A-Za-z0-9_.-]+)\]$ ]]; then
        cur=${BASH_REMATCH[1]}
        [[ -z ${t_timeout[$cur]:-} ]] || die "$cfg:$lineno: [$cur] given twice"
        names+=("$cur")
        t_timeout[$cur]=60 t_disks[$cur]='' t_bootargs[$cur]='' t_extra[$cur]=''
    elif [[ $line =~ ^([a-z_]+)[[:space:]]*=[[:space:]]*(.*)$ ]]; then
        [[ -n $cur ]] || die "$cfg:$lineno: '${BASH_REMATCH[1]}' outside a [section]"
        val=${BASH_REMATCH[2]}
        case ${BASH_REMATCH[1]} in
        file) t_file[$cur]=$val ;;
        disks) t_disks[$cur]=$val ;;
        bootargs) t_bootargs[$cur]=$val ;;
        extra_params) t_extra[$cur]=$val ;;
        timeout)
            [[ $val =~ ^[0-9]+$ && $val -gt 0 ]] || die "$cfg:$lineno: timeout '$val' is not a positive number"
            t_timeout[$cur]=$val
            ;;
        *) die "$cfg:$lineno: unknown key '${BASH_REMATCH[1]}'" ;;
        esac
    else
        die "$cfg:$lineno: cannot parse '$line'"
    fi
done <"$cfg"
[[ ${#names[@]} -gt 0 ]] || die "$cfg lists no tests"

if [[ ${#selected[@]} -gt 0 ]]; then
    for s in "${selected[@]}"; do
        [[ -n ${t_timeout[$s]:-} ]] || die "no test '$s' in $cfg"
    done
    names=("${selected[@]}")
fi
for t in "${names[@]}"; do
    [[ -n ${t_file[$t]:-} ]] || die "[$t] has no file ="
    [[ -f $fw_dir/${t_file[$t]} ]] || die "$fw_dir/${t_file[$t]} not built (make firmware)"
done

mode=${FW_MODE:-}
if [[ -z $mode ]]; then
    mode=$("$root/scripts/kvm-usable.sh" --mode run-firmware-tests)
fi
case $mode in
kvm) [[ -x $minivmm ]] || die "$minivmm not built (make)" ;;
nested) [[ -x $minivmm_static ]] || die "$minivmm_static not built (make build/minivmm-static)" ;;
*) die "FW_MODE: '$mode' is neither kvm nor nested" ;;
esac

# ---- Images -------------------------------------------------------------------
to_bytes() {
    local n=${1%[KMG]} unit=${1##*[0-9]}
    [[ $n =~ ^[0-9]+$ ]] || return 1
    case $unit in
    K) echo $((n << 10)) ;;
    M) echo $((n << 20)) ;;
    G) echo $((n << 30)) ;;
    '') echo "$n" ;;
    *) return 1 ;;
    esac
}

mkdir -p "$img_dir" "$log_dir"
# Per test: its minivmm --disk words (KIND:N[,opts], N the image's index,
# to become the host path or L1's /dev/vdX), its full bootargs, its images.
declare -A t_diskargs=() t_append=() t_nimg=()

# Make test $1's images afresh (also before a retry: a test may have
# written to them).
make_images() {
    local t=$1 nsata=0 nvirtio=0 i=0 diskargs='' append='' spec opts kind
    local size fill extra bytes img
    for spec in ${t_disks[$t]}; do
        opts=
        [[ $spec == *,* ]] && opts=${spec#*,}
        IFS=: read -r kind size fill extra <<<"${spec%%,*}"
        [[ $kind == sata || $kind == virtio ]] || die "[$t]: disk '$spec': kind is not sata or virtio"
        bytes=$(to_bytes "$size") || die "[$t]: disk '$spec': bad size '$size'"
        [[ -z ${extra:-} && (-z $fill || $fill == pattern) ]] || die "[$t]: disk '$spec': only ':pattern' may follow the size"
        img=$img_dir/$t-$i.img
        rm -f "$img"
        truncate -s "$bytes" "$img"
        if [[ $fill == pattern ]]; then
            [[ -x $iotest ]] || die "$iotest not built (make build/guest/iotest)"
            ((bytes % (1 << 20) == 0)) || die "[$t]: disk '$spec': a pattern disk is whole MiB"
            "$iotest" --fill --size-mib $((bytes >> 20)) "$img" >/dev/null ||
                die "[$t]: iotest --fill $img failed"
        fi
        if [[ $kind == sata ]]; then
            append+=" sata$nsata-size=$bytes"
            nsata=$((nsata + 1))
        else
            append+=" virtio$nvirtio-size=$bytes"
            nvirtio=$((nvirtio + 1))
        fi
        diskargs+=" $kind:$i${opts:+,$opts}"
        i=$((i + 1))
    done
    t_diskargs[$t]=$diskargs
    t_nimg[$t]=$i
    append="${t_bootargs[$t]}$append"
    t_append[$t]=${append# }
}

for t in "${names[@]}"; do
    make_images "$t"
done

# ---- Verdicts -----------------------------------------------------------------
npass=0 nfail=0
failed_names=()
stage_dirs=()
declare -A dev_of=()
unfinished=() hung=0
trap 'rm -rf "${stage_dirs[@]}"' EXIT

# What minivmm's exit status RC says (minivmm --help; util/exit-status.h).
# A test's main() returns 0 (all passed) or 1 and an exception 2 (FW_EXIT_CRASH)
# through the test exit port, which minivmm reports as 0, 65 and 66.
status_name() {
    case $1 in
    1) echo "minivmm failed" ;;
    3) echo "the guest crashed: triple fault" ;;
    4) echo "KVM could not run the guest" ;;
    65) echo "the test reported failures" ;;
    66) echo "the test crashed" ;;
    *) echo "exit status $1" ;;
    esac
}

# verdict NAME RC SECONDS: one line from the test's log.
verdict() {
    local t=$1 rc=$2 secs=$3 log=$log_dir/$1.log why='' nfails
    if [[ $verbose == 1 ]]; then
        sed 's/^/    /' "$log"
    fi
    if [[ $rc == 0 ]] && grep -q '^SUMMARY: .* 0 unexpected failures' "$log"; then
        echo "PASS $t ($secs s)"
        npass=$((npass + 1))
        return
    fi
    nfails=$(grep -c '^FAIL: ' "$log" || true)
    # 5: minivmm's own --timeout, should extra_params give one.
    if [[ $rc == 5 || $rc == 124 || $rc == 137 || $rc == 143 ]]; then
        why="timed out after ${t_timeout[$t]} s"
        # The nested watchdog's report: where minivmm's threads were.
        if grep -q '^fwtest: .* still running' "$log"; then
            why+=";$(grep -A8 '^fwtest: .* still running' "$log" |
                grep '^  ' | tr -s ' \n' ' ')"
        fi
    elif [[ $rc == lost ]]; then
        why="L1 stopped before the test ended; last output: $(tail -n 1 "$log")"
    elif grep -q '^ABORT: ' "$log"; then
        why=$(grep -m1 '^ABORT: ' "$log")
    elif [[ $nfails -gt 0 ]]; then
        why=$(grep -m1 '^FAIL: ' "$log")
        [[ $nfails -gt 1 ]] && why+=" (and $((nfails - 1)) more)"
    elif ! grep -q '^SUMMARY: ' "$log"; then
        why="$(status_name "$rc"), no SUMMARY: $(tail -n 1 "$log")"
    else
        why=$(status_name "$rc")
    fi
    echo "FAIL $t ($why)"
    nfail=$((nfail + 1))
    failed_names+=("$t")
}

# ---- Running them: KVM here ------------------------------------------------------
run_kvm() {
    local cache=none t d kind rest idx opts start rc
    local -a args extra
    # cache=none is O_DIRECT, which tmpfs lacks.
    [[ $(stat -f -c %T "$img_dir") == tmpfs ]] && cache=writeback
    for t in "${names[@]}"; do
        args=(--kernel "$fw_dir/${t_file[$t]}" --serial stdio)
        for d in ${t_diskargs[$t]}; do
            kind=${d%%:*} rest=${d#*:}
            idx=${rest%%,*} opts=
            [[ $rest == *,* ]] && opts=,${rest#*,}
            args+=(--disk "$kind:$img_dir/$t-$idx.img,cache=$cache$opts")
        done
        [[ -z ${t_append[$t]} ]] || args+=(--append "${t_append[$t]}")
        read -ra extra <<<"${t_extra[$t]}"
        args+=("${extra[@]}")
        start=$EPOCHREALTIME
        rc=0
        timeout -k 5 "${t_timeout[$t]}" "$minivmm" "${args[@]}" \
            </dev/null >"$log_dir/$t.log" 2>&1 || rc=$?
        verdict "$t" "$rc" "$(awk -v a="$start" -v b="$EPOCHREALTIME" \
            'BEGIN { printf "%.1f", b - a }')"
    done
}

# ---- Running them: all in one nested L1 ------------------------------------------
# One busybox-sh word, single-quoted.
sq() {
    local s=${1//\'/\'\\\'\'}
    printf "'%s'" "$s"
}

# The payload: a watchdog around each test, then the tests. Args: tests.
write_payload() {
    local t d kind rest idx opts cmd
    local -a extra
    cat <<'EOF'
# Written by scripts/run-firmware-tests.sh: every test, in turn.
up() { read -r u _ </proc/uptime; echo "$u"; }
# run NAME SECONDS CMD...: CMD in the background, killed (SIGKILL: minivmm
# exits 0 on SIGTERM) if still there after SECONDS, with where its threads
# sleep printed first, should a hang ever need explaining.
run() {
    name=$1 secs=$2
    shift 2
    "$@" </dev/null 2>&1 &
    pid=$!
    (
        sleep "$secs"
        kill -0 "$pid" 2>/dev/null || exit 0
        echo "fwtest: $name still running after $secs s; its threads:"
        for t in /proc/$pid/task/*; do
            echo "  ${t##*/} $(cut -d' ' -f3 "$t/stat") $(cat "$t/wchan")"
        done
        kill -9 "$pid"
    ) &
    dog=$!
    wait "$pid"
    rc=$?
    kill "$dog" 2>/dev/null
    return $rc
}
EOF
    for t in "$@"; do
        cmd="run $t ${t_timeout[$t]} /payload/fw/minivmm --kernel $(sq "/payload/fw/${t_file[$t]}") --serial stdio"
        for d in ${t_diskargs[$t]}; do
            kind=${d%%:*} rest=${d#*:}
            idx=${rest%%,*} opts=
            [[ $rest == *,* ]] && opts=,${rest#*,}
            cmd+=" --disk $(sq "$kind:${dev_of[$img_dir/$t-$idx.img]},cache=none$opts")"
        done
        [[ -z ${t_append[$t]} ]] || cmd+=" --append $(sq "${t_append[$t]}")"
        read -ra extra <<<"${t_extra[$t]}"
        for d in "${extra[@]}"; do
            cmd+=" $(sq "$d")"
        done
        echo "echo \"fwtest-begin $t up=\$(up)\""
        echo "$cmd"
        echo "echo \"fwtest-end $t rc=\$? up=\$(up)\""
    done
}

# How long L1 may go without a marker line before it counts as hung: its
# boot, a test (whose own watchdog fires at its timeout), the gap after one.
L1_BOOT_S=120
L1_SLACK_S=${FW_L1_SLACK_S:-30}

# run_nested_once SUFFIX TEST...: one L1 for these tests. Judges the ones
# that end; leaves the others in `unfinished`, and sets `hung` if L1 had to
# be stopped for making no progress.
run_nested_once() {
    local suffix=$1 stage console budget=60 t i line n=0 nested_rc=0 npid
    local letters=abcdefghijklmnopqrstuvwxyz last='' changed=$SECONDS limit
    local -a nested_args=()
    shift
    unfinished=() hung=0
    dev_of=()
    stage=$(mktemp -d "${TMPDIR:-/tmp}/fwtests.XXXXXX")
    stage_dirs+=("$stage")
    mkdir -p "$stage/fw"
    cp "$minivmm_static" "$stage/fw/minivmm"
    for t in "$@"; do
        cp "$fw_dir/${t_file[$t]}" "$stage/fw/"
        budget=$((budget + t_timeout[$t]))
        for ((i = 0; i < t_nimg[$t]; i++)); do
            [[ $n -lt 26 ]] || die "more than 26 images: L1 has /dev/vda..vdz"
            dev_of[$img_dir/$t-$i.img]=/dev/vd${letters:n:1}
            nested_args+=(--disk "$img_dir/$t-$i.img")
            n=$((n + 1))
        done
    done
    write_payload "$@" >"$stage/fw/run.sh"

    console=$log_dir/nested-console$suffix.log
    echo "run-firmware-tests: no usable /dev/kvm: $# tests in one nested L1 ($n disks)"
    "$root/scripts/nested.sh" --timeout "$budget" "${nested_args[@]}" \
        --file "$stage/fw:/payload/fw" -- sh /payload/fw/run.sh \
        >"$console" 2>"$log_dir/nested-stderr$suffix.log" &
    npid=$!
    # Watch for progress: a wedged L1 would otherwise cost the whole budget.
    while kill -0 "$npid" 2>/dev/null; do
        sleep 1
        line=$(grep -E '^fwtest-(begin|end) ' "$console" | tail -n 1 || true)
        if [[ $line != "$last" ]]; then
            last=$line changed=$SECONDS
        fi
        case $last in
        '') limit=$L1_BOOT_S ;;
        fwtest-begin*) t=${last#fwtest-begin } && limit=$((t_timeout[${t%% *}] + L1_SLACK_S)) ;;
        *) limit=$L1_SLACK_S ;;
        esac
        if ((SECONDS - changed > limit)); then
            echo "run-firmware-tests: L1 made no progress for $limit s (${last:-booting}): stopping it"
            if [[ -S ${NESTED_MONITOR:-} ]]; then
                "$root/scripts/qemu-monitor.py" "$NESTED_MONITOR" "info cpus" \
                    "info registers -a" >"$log_dir/l1-monitor$suffix.log" 2>&1 || true
                echo "run-firmware-tests: L1's CPUs ($log_dir/l1-monitor$suffix.log):"
                grep -E '^(CPU#|RIP=)' "$log_dir/l1-monitor$suffix.log" |
                    sed 's/^/  /' || true
            fi
            hung=1
            kill "$npid" 2>/dev/null || true
            break
        fi
    done
    wait "$npid" || nested_rc=$?

    # Cut the console into one log per test, judging each as it ends.
    local cur='' up0='' secs
    while IFS= read -r line; do
        if [[ $line =~ ^fwtest-begin\ ([^ ]+)\ up=([0-9.]+) ]]; then
            cur=${BASH_REMATCH[1]} up0=${BASH_REMATCH[2]}
            : >"$log_dir/$cur.log"
        elif [[ -n $cur && $line =~ ^fwtest-end\ ([^ ]+)\ rc=([0-9]+)\ up=([0-9.]+) ]]; then
            secs=$(awk -v a="$up0" -v b="${BASH_REMATCH[3]}" 'BEGIN { printf "%.1f", b - a }')
            verdict "$cur" "${BASH_REMATCH[2]}" "$secs"
            cur=
        elif [[ -n $cur ]]; then
            printf '%s\n' "$line" >>"$log_dir/$cur.log"
        fi
    done <"$console"
    for t in "$@"; do
        grep -q "^fwtest-end $t " "$console" || unfinished+=("$t")
    done
    sed -n 's/^nested: /run-firmware-tests: nested: /p' "$log_dir/nested-stderr$suffix.log"
    [[ $nested_rc == 0 || $hung == 1 ]] ||
        echo "run-firmware-tests: nested.sh exited with $nested_rc (console: $console)"
}

# A hung L1 (seen now and then under TCG, never caused by one test) gets
# one retry in a fresh L1 for the tests it did not finish.
run_nested() {
    local t
    rm -f "$log_dir"/nested-console*.log "$log_dir"/nested-stderr*.log
    run_nested_once "" "${names[@]}"
    if [[ $hung == 1 && ${#unfinished[@]} -gt 0 ]]; then
        echo "run-firmware-tests: retrying ${unfinished[*]} in a fresh L1"
        for t in "${unfinished[@]}"; do
            make_images "$t"
        done
        run_nested_once -retry "${unfinished[@]}"
    fi
    for t in "${unfinished[@]}"; do
        if ! grep -q "^fwtest-begin $t " "$log_dir"/nested-console*.log; then
            echo "(L1 never ran this test)" >"$log_dir/$t.log"
        fi
        verdict "$t" lost 0
    done
}

start=$EPOCHREALTIME
if [[ $mode == kvm ]]; then
    run_kvm
else
    run_nested
fi
total=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo "firmware tests: $npass passed, $nfail failed${failed_names[*]:+ (${failed_names[*]})}" \
    "[$mode, $total s; logs in $log_dir]"
[[ $nfail == 0 ]]
