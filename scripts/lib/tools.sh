# Shared by scripts/test, scripts/lint-cfn and scripts/deploy: log helpers and
# Python tools installed into virtualenvs under one tools directory.
#
#   source "$REPO_ROOT/scripts/lib/tools.sh"
#   ensure_pip "$TOOLS_DIR/venv" moto_server 'moto[server]==5.2.5'
#
# Environment:
#   DRS_CACHE_TOOLS   tools dir (default: $HOME/.cache/drs-cache/tools)
#   PYTHON            interpreter used to create a venv (default: python3)

TOOLS_DIR="${DRS_CACHE_TOOLS:-$HOME/.cache/drs-cache/tools}"
PYTHON="${PYTHON:-python3}"

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# venv_ready VENV BIN SPEC...: true when BIN is in VENV and every requirement
# of each SPEC (extras included) is installed. --no-index keeps the check
# offline: a missing piece makes it fail.
venv_ready() {
    local venv="$1" bin="$2"
    shift 2
    [[ -x "$venv/bin/$bin" && -x "$venv/bin/python" ]] || return 1
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-index \
        --dry-run --quiet "$@" >/dev/null 2>&1
}

# Another process may be installing into VENV without our lock (someone
# running pip by hand): while files in it keep changing, wait (up to 5 min)
# rather than run a second pip over it.
wait_for_quiet_venv() {
    local deadline=$((SECONDS + 300)) announced=""
    [[ -d "$1" ]] || return 0
    while ((SECONDS < deadline)) &&
        [[ -n "$(find "$1" -newermt '-10 seconds' -print -quit 2>/dev/null)" ]]; do
        [[ -n "$announced" ]] || log "waiting for another install into $1 to settle"
        announced=1
        sleep 2
    done
}

# ensure_pip VENV BIN SPEC...: install the SPECs (one of which provides the
# command BIN) into VENV unless already there, in one pip run. Serialised with a lock file per venv so parallel
# runs do not install over each other; one retry covers a concurrent installer
# that does not take the lock.
ensure_pip() {
    local venv="$1" bin="$2"
    shift 2
    local -a specs=("$@")
    venv_ready "$venv" "$bin" "${specs[@]}" && return 0
    mkdir -p "$(dirname "$venv")"
    (
        if command -v flock >/dev/null; then
            exec 9>"$venv.install.lock"
            flock 9
        fi
        wait_for_quiet_venv "$venv"
        venv_ready "$venv" "$bin" "${specs[@]}" && exit 0
        log "installing ${specs[*]} into $venv"
        if ! "$venv/bin/python" -c '' 2>/dev/null; then
            "$PYTHON" -m venv --clear "$venv"  # missing or unusable: start over
        elif ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
            "$PYTHON" -m venv "$venv"  # creation was interrupted before pip
        fi
        # --no-compile: writing bytecode for every module at install would take
        # a core from a build running beside it; Python compiles what a tool
        # imports when it first starts.
        local attempt
        for attempt in 1 2; do
            if "$venv/bin/python" -m pip install --disable-pip-version-check \
                --quiet --no-compile "${specs[@]}"; then
                exit 0
            fi
            log "pip install failed (attempt $attempt)"
            sleep 5
        done
        exit 1
    ) || die "could not install ${specs[*]} into $venv"
    venv_ready "$venv" "$bin" "${specs[@]}" ||
        die "${specs[*]} still incomplete in $venv after install"
}
