# Shared by scripts/serve and scripts/test: system packages and the project's virtualenv.

# apt_install PACKAGE...: install Debian packages that are not installed yet.
apt_install() {
  local wanted=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || wanted+=("$pkg")
  done
  ((${#wanted[@]})) || return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${wanted[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${wanted[@]}" >/dev/null
}

# ensure_venv: .venv with an up-to-date pip and setuptools (Debian's python3 needs python3-venv).
ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv && python3 -m venv .venv; }
  fi
  .venv/bin/python -m pip install -q --upgrade pip 'setuptools>=77'
}
