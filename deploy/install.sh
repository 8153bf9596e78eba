#!/usr/bin/env bash
# Install or upgrade depotwatch on a Debian 12 / Raspberry Pi OS (bookworm) gateway, amd64 or
# arm64. Run from a checkout (or an unpacked release) as root:
#
#   sudo deploy/install.sh [--with-mosquitto] [--ip-allow] [--dry-run] [--root DIR] [--source DIR]
#
# - a virtual environment in /opt/depotwatch with depotwatch installed into it (re-running
#   upgrades it in place);
# - the system user `depotwatch` (group dialout for serial adapters is given by the unit);
# - /etc/depotwatch/depotwatch.yaml from the example on first install only: an existing config
#   and /etc/depotwatch/depotwatch.env (secrets, a badge salt made here) are never replaced, and
#   an upgrade whose `check-config` rejects the existing config stops before the restart;
# - deploy/depotwatch.service enabled and (re)started.
# --with-mosquitto also sets up the gateway broker (deploy/mosquitto/: TLS listener, password
# file with a `depotwatch` user, per-device ACL); its certificates must be in place first.
# --ip-allow writes the unit's drop-in letting it reach only the configured servers
# (`depotwatch ip-allow`); shell completion and the man page go to /usr/local/share.
# --dry-run prints every step and changes nothing; --root DIR installs under DIR (staging).
set -euo pipefail

SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=""
DRY_RUN=0
WITH_MOSQUITTO=0
IP_ALLOW=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --with-mosquitto) WITH_MOSQUITTO=1 ;;
    --ip-allow) IP_ALLOW=1 ;;
    --root) ROOT=${2:?--root needs a directory}; shift ;;
    --source) SOURCE=${2:?--source needs a directory}; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

PREFIX="$ROOT/opt/depotwatch"
CONF_DIR="$ROOT/etc/depotwatch"
UNIT_DIR="$ROOT/etc/systemd/system"
MOSQUITTO_DIR="$ROOT/etc/mosquitto"
CONFIG="$CONF_DIR/depotwatch.yaml"
ENV_FILE="$CONF_DIR/depotwatch.env"

say() { printf '%s\n' "depotwatch install: $*"; }
run() {
  printf '+ %s\n' "$*"
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}
die() { say "$*" >&2; exit 1; }

# -- preconditions ----------------------------------------------------------------------------
if [ "$DRY_RUN" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo), or with --dry-run"
fi
[ -f "$SOURCE/pyproject.toml" ] && [ -d "$SOURCE/daemon" ] \
  || die "$SOURCE is not a depotwatch source tree (use --source)"
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
case "$ARCH" in
  amd64|x86_64|arm64|aarch64) say "architecture $ARCH" ;;
  *) say "WARNING: architecture $ARCH is untested (wheels for pydantic-core may be missing)" ;;
esac

# -- packages ---------------------------------------------------------------------------------
PACKAGES="python3 python3-venv"
[ "$WITH_MOSQUITTO" = 1 ] && PACKAGES="$PACKAGES mosquitto mosquitto-clients"
# shellcheck disable=SC2086  # word splitting of the package list is wanted
if ! dpkg -s $PACKAGES >/dev/null 2>&1; then
  run apt-get update -q
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "depotwatch needs Python 3.11 or newer (Debian 12 / Raspberry Pi OS bookworm)"

# -- user -------------------------------------------------------------------------------------
if getent passwd depotwatch >/dev/null; then
  say "user depotwatch exists"
elif [ -n "$ROOT" ]; then
  say "staging under $ROOT: not creating the user depotwatch"
else
  run useradd --system --user-group --home-dir /var/lib/depotwatch --no-create-home \
    --shell /usr/sbin/nologin --comment "depotwatch gateway daemon" depotwatch
fi

# -- the virtual environment ------------------------------------------------------------------
if [ ! -x "$PREFIX/bin/python" ]; then
  run python3 -m venv "$PREFIX"
else
  say "upgrading the virtual environment in $PREFIX"
fi
run "$PREFIX/bin/pip" install --quiet --upgrade pip
WHEELS=$(mktemp -d)
trap 'rm -rf "$WHEELS"' EXIT
# Build the wheel from a clean copy (a build/ left in the checkout can carry deleted modules
# into the wheel, and the checkout may be read-only), then force it in: the version number may
# not have changed since the last install, and pip would otherwise keep the old code.
run mkdir -p "$WHEELS/src"
run cp -r "$SOURCE/pyproject.toml" "$SOURCE/README.md" "$SOURCE/daemon" "$SOURCE/drivers" \
  "$SOURCE/rules" "$WHEELS/src/"
run "$PREFIX/bin/pip" wheel --quiet --no-deps --wheel-dir "$WHEELS" "$WHEELS/src"
run "$PREFIX/bin/pip" install --quiet --upgrade --force-reinstall --no-deps "$WHEELS"/depotwatch-*.whl
run "$PREFIX/bin/pip" install --quiet --upgrade "$WHEELS"/depotwatch-*.whl
run install -d -m 0755 "$PREFIX/share"
run install -m 0644 "$SOURCE/README.md" "$PREFIX/share/README.md"
run cp -r "$SOURCE/deploy" "$SOURCE/dashboards" "$SOURCE/examples" "$PREFIX/share/"
# Shell completion and the man page, generated by the installed version from its own parser.
SHARE="$ROOT/usr/local/share"
run install -d "$SHARE/bash-completion/completions" "$SHARE/zsh/site-functions" "$SHARE/man/man1"
for generated in "completion bash:bash-completion/completions/depotwatch" \
                 "completion zsh:zsh/site-functions/_depotwatch" "manpage:man/man1/depotwatch.1"; do
  printf '+ %s > %s\n' "$PREFIX/bin/depotwatch ${generated%%:*}" "$SHARE/${generated#*:}"
  # shellcheck disable=SC2086  # the subcommand and its argument are two words
  [ "$DRY_RUN" = 1 ] || "$PREFIX/bin/depotwatch" ${generated%%:*} > "$SHARE/${generated#*:}"
done

# -- configuration: made once, then kept --------------------------------------------------------
run install -d -m 0750 "$CONF_DIR"
# systemd credentials (LoadCredential= in the unit): one root-only file per secret.
run install -d -m 0700 "$CONF_DIR/credentials"
FRESH_CONFIG=0
if [ -f "$CONFIG" ]; then
  say "keeping the existing config $CONFIG"
else
  FRESH_CONFIG=1
  say "first install: $CONFIG from examples/demo-depot.yaml (edit it: site, devices, servers)"
  run install -m 0640 "$SOURCE/examples/demo-depot.yaml" "$CONFIG"
  run sed -i -e 's#^state_dir: .*#state_dir: /var/lib/depotwatch#' \
    -e '/^file_output:/,/^  path:/d' "$CONFIG"
fi
if [ -f "$ENV_FILE" ]; then
  say "keeping $ENV_FILE"
else
  # The badge salt must never change: unknown badges are logged by their salted hash.
  SALT=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  if [ "$DRY_RUN" = 0 ]; then
    umask 027
    printf '# Secrets for ${VARIABLE} in depotwatch.yaml (read by the systemd unit).\n' > "$ENV_FILE"
    printf 'DEPOTWATCH_BADGE_SALT=%s\n' "$SALT" >> "$ENV_FILE"
  fi
  say "wrote $ENV_FILE with a new DEPOTWATCH_BADGE_SALT"
fi
if [ -z "$ROOT" ] && getent group depotwatch >/dev/null; then
  run chown root:depotwatch "$CONF_DIR" "$CONFIG" "$ENV_FILE"
  run chmod 0640 "$CONFIG" "$ENV_FILE"
fi

# -- the gateway broker (optional) ------------------------------------------------------------
if [ "$WITH_MOSQUITTO" = 1 ]; then
  for cert in ca.crt gateway.crt gateway.key; do
    [ -f "$MOSQUITTO_DIR/certs/$cert" ] || [ "$DRY_RUN" = 1 ] \
      || die "put the broker's TLS files in $MOSQUITTO_DIR/certs/ first (missing: $cert)"
  done
  for file in conf.d/depotwatch.conf depotwatch.acl; do
    if [ -f "$MOSQUITTO_DIR/$file" ]; then
      say "keeping $MOSQUITTO_DIR/$file"
    else
      run install -m 0644 "$SOURCE/deploy/mosquitto/$(basename "$file")" "$MOSQUITTO_DIR/$file"
    fi
  done
  if [ -f "$MOSQUITTO_DIR/depotwatch.passwd" ]; then
    say "keeping $MOSQUITTO_DIR/depotwatch.passwd"
  else
    MQTT_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
    run install -m 0640 -g mosquitto /dev/null "$MOSQUITTO_DIR/depotwatch.passwd"
    if [ "$DRY_RUN" = 0 ]; then
      mosquitto_passwd -b "$MOSQUITTO_DIR/depotwatch.passwd" depotwatch "$MQTT_PASSWORD"
      printf 'DEPOTWATCH_MQTT_PASSWORD=%s\n' "$MQTT_PASSWORD" >> "$ENV_FILE"
    fi
    if [ "$FRESH_CONFIG" = 1 ]; then
      run sed -i -e 's/^  # username: depotwatch/  username: depotwatch/' \
        -e 's/^  # password: \(.*MQTT_PASSWORD.*\)/  password: \1/' "$CONFIG"
    else
      say "set mqtt.username: depotwatch, mqtt.password: \${DEPOTWATCH_MQTT_PASSWORD} in $CONFIG"
    fi
    say "add each device: mosquitto_passwd $MOSQUITTO_DIR/depotwatch.passwd <its sensor id>"
  fi
fi

# -- the unit ---------------------------------------------------------------------------------
run install -d "$UNIT_DIR"
run install -m 0644 "$SOURCE/deploy/depotwatch.service" "$UNIT_DIR/depotwatch.service"
if [ "$IP_ALLOW" = 1 ]; then
  # Only the configured servers' addresses (IPAddressDeny=any); written again on every install.
  run install -d "$UNIT_DIR/depotwatch.service.d"
  printf '+ %s\n' "$PREFIX/bin/depotwatch ip-allow -c $CONFIG > $UNIT_DIR/depotwatch.service.d/ip-allow.conf"
  if [ "$DRY_RUN" = 0 ]; then
    "$PREFIX/bin/depotwatch" ip-allow -c "$CONFIG" > "$UNIT_DIR/depotwatch.service.d/ip-allow.conf.new" \
      || die "depotwatch ip-allow failed (above); the unit is installed without it"
    mv "$UNIT_DIR/depotwatch.service.d/ip-allow.conf.new" "$UNIT_DIR/depotwatch.service.d/ip-allow.conf"
  fi
fi
if [ -n "$ROOT" ]; then
  say "staged under $ROOT; not touching systemd"
  exit 0
fi
if [ "$DRY_RUN" = 0 ] && ! "$PREFIX/bin/depotwatch" check-config -c "$CONFIG"; then
  die "$CONFIG is rejected by this version (above: file, line, problem); fix it, then re-run"
fi
# The key that signs reports and the daily audit digests (kept if it exists).
if [ "$DRY_RUN" = 0 ]; then
  install -d -o depotwatch -g depotwatch -m 0750 /var/lib/depotwatch
  runuser -u depotwatch -- "$PREFIX/bin/depotwatch" keys init -c "$CONFIG" >/dev/null \
    || die "cannot make the signing key (depotwatch keys init)"
fi
if [ ! -d /run/systemd/system ]; then
  say "systemd is not running here: enable later with systemctl enable --now depotwatch"
  exit 0
fi
run systemctl daemon-reload
[ "$WITH_MOSQUITTO" = 1 ] && run systemctl restart mosquitto
run systemctl enable depotwatch
run systemctl restart depotwatch
say "done: systemctl status depotwatch; journalctl -u depotwatch -f"
