#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run all of it.
# Arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)
# real speech with transcripts, and a speaker for Tamil and Hindi (tests/audio; skipped without)
[ -d /usr/share/pocketsphinx/test/data/librivox ] || need_apt+=(pocketsphinx-testdata)
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
# Tamil and Devanagari glyphs for the browser tests' screenshots
[ -d /usr/share/fonts/truetype/noto ] || need_apt+=(fonts-noto-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "note: install ${need_apt[*]} (sudo apt-get install ${need_apt[*]}); the tests that need them skip" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# every optional extra too, so the tests cover the optional predictors and Ray (torch is pinned
# to its CPU build)
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,models,ray,e5,nsfw,torch,asr]'

# Label Studio for the round-trip tests (tests/interop_ls): an environment of its own,
# outside the clone, installed once. It is built aside and renamed into place, so an
# interrupted install is redone; its scripts keep the build path, so it is run as
# "$LABELFARM_LABEL_STUDIO/bin/python -m label_studio.server".
ls_version=1.23.2
ls_venv="${LABELFARM_LABEL_STUDIO:-${XDG_CACHE_HOME:-$HOME/.cache}/labelfarm/label-studio-$ls_version}"
if [ ! -e "$ls_venv" ]; then
  mkdir -p "$(dirname "$ls_venv")"
  find "$(dirname "$ls_venv")" -maxdepth 1 -name "$(basename "$ls_venv").part-*" -mmin +1440 \
    -exec rm -rf {} +
  part="$(mktemp -d "$ls_venv.part-XXXXXX")" && chmod 755 "$part"
  echo "installing label-studio==$ls_version into $ls_venv (once, about 1 GB)" >&2
  # and a migrated empty database, copied by each test session (it starts in seconds,
  # where migrating takes minutes on a busy machine)
  if ! { python3 -m venv "$part" &&
    "$part/bin/python" -m pip install -q --disable-pip-version-check "label-studio==$ls_version" &&
    mkdir "$part/template" &&
    env -i PATH="$PATH" HOME="$part/template" LABEL_STUDIO_BASE_DATA_DIR="$part/template" \
      COLLECT_ANALYTICS=false LATEST_VERSION_CHECK=false \
      "$part/bin/python" -m label_studio.server version >"$part/template.log" 2>&1 &&
    mv "$part/template/label_studio.sqlite3" "$part/labelfarm-template.sqlite3" &&
    rm -rf "$part/template" "$part/template.log"; }; then
    tail -n 20 "$part/template.log" 2>/dev/null >&2 || true
    rm -rf "$part"
    echo "error: could not install label-studio==$ls_version for tests/interop_ls" >&2
    exit 1
  fi
  mv -T "$part" "$ls_venv" 2>/dev/null || rm -rf "$part"  # another run got there first
fi
export LABELFARM_LABEL_STUDIO="$ls_venv"

# A Label Studio ML backend for the external model server tests (tests/ml_backend): the
# PyPI package its users write backends with, in an environment of its own, installed once
# like Label Studio's above. It pins an old Flask and imports redis and rq without
# declaring them; the tests run it as "$LABELFARM_LS_ML/bin/python tests/ml_backend/backend/serve.py".
ml_version=1.0.9
ml_venv="${LABELFARM_LS_ML:-${XDG_CACHE_HOME:-$HOME/.cache}/labelfarm/label-studio-ml-$ml_version}"
if [ ! -e "$ml_venv" ]; then
  mkdir -p "$(dirname "$ml_venv")"
  find "$(dirname "$ml_venv")" -maxdepth 1 -name "$(basename "$ml_venv").part-*" -mmin +1440 \
    -exec rm -rf {} +
  part="$(mktemp -d "$ml_venv.part-XXXXXX")" && chmod 755 "$part"
  echo "installing label-studio-ml==$ml_version into $ml_venv (once)" >&2
  if ! { python3 -m venv "$part" &&
    "$part/bin/python" -m pip install -q --disable-pip-version-check \
      "label-studio-ml==$ml_version" redis rq; }; then
    rm -rf "$part"
    echo "error: could not install label-studio-ml==$ml_version for tests/ml_backend" >&2
    exit 1
  fi
  mv -T "$part" "$ml_venv" 2>/dev/null || rm -rf "$part"  # another run got there first
fi
export LABELFARM_LS_ML="$ml_venv"

exec .venv/bin/python -m pytest "$@"
