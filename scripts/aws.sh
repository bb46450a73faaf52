#!/usr/bin/env bash
# A local AWS emulator (moto server from PyPI, via scripts/moto_server.py) on
# loopback, for tests that run the real AWS SDK / object_store clients against
# S3 and friends, and for running the synthesized state machines; beside it in
# the same virtualenv, cargo-lambda, whose `cargo lambda watch --only-lambda-apis`
# serves Lambda's runtime and Invoke APIs to `ferry lambda` in the tests.
#
#   scripts/aws.sh start   install moto and cargo-lambda into a virtualenv (first time) and start moto
#   scripts/aws.sh stop    stop it
#   scripts/aws.sh env     print the AWS_* exports for eval
#
# Settings: FERRY_AWS_PORT (54566), FERRY_AWS_VENV (~/.cache/ferry-aws-venv).
set -euo pipefail

PORT=${FERRY_AWS_PORT:-54566}
VENV=${FERRY_AWS_VENV:-$HOME/.cache/ferry-aws-venv}
STATE=${TMPDIR:-/tmp}/ferry-aws-$PORT
MOTO_VERSION=5.2.5
# Lambda's runtime API emulator (`cargo lambda watch --only-lambda-apis`) for `ferry lambda`.
CARGO_LAMBDA_VERSION=1.9.2

say() { echo "aws.sh: $*" >&2; }

install() {
  if [ -x "$VENV/bin/moto_server" ] && "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null \
     && "$VENV/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "^cargo-lambda $CARGO_LAMBDA_VERSION "; then
    return
  fi
  say "installing moto[server]==$MOTO_VERSION and cargo-lambda==$CARGO_LAMBDA_VERSION into $VENV…"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION"
}

running() { [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }

start() {
  install
  if running; then say "already running on 127.0.0.1:$PORT"; return; fi
  mkdir -p "$STATE"
  # moto with the gaps a synthesized architecture hits filled in (see the script).
  MOTO_PORT=$PORT nohup "$VENV/bin/python" "$(dirname "$0")/moto_server.py" -H 127.0.0.1 -p "$PORT" \
    >"$STATE/moto.log" 2>&1 &
  echo $! >"$STATE/pid"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      say "moto running on 127.0.0.1:$PORT; stop with scripts/aws.sh stop"
      return
    fi
    sleep 0.1
  done
  say "moto did not start:"; tail -n 20 "$STATE/moto.log" >&2; exit 1
}

stop() {
  if running; then kill "$(cat "$STATE/pid")" 2>/dev/null || true; fi
  rm -rf "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env)
    echo "export AWS_ENDPOINT_URL='http://127.0.0.1:$PORT'"
    echo "export AWS_ACCESS_KEY_ID='test' AWS_SECRET_ACCESS_KEY='test' AWS_REGION='us-east-1' AWS_DEFAULT_REGION='us-east-1'"
    echo "export MOTO_PORT='$PORT'"
    echo "export FERRY_TEST_CARGO_LAMBDA='$VENV/bin/cargo-lambda'"
    ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
