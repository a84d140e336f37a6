#!/bin/sh
# Recording stand-in for the package managers the agent may call (dnf, yum, apt-get,
# amazon-linux-extras), which cannot run on this Debian machine. Installed under each of
# those names; it behaves as the name it was called by.
#
# - $STUB_DIR below is $ECR_FLEET_AUTH_STUB_DIR (default /opt/stub). Every call is appended to $STUB_DIR/calls.log as "<name> <arguments>".
# - Fails (exit 1) when $STUB_DIR/fail-<name> exists, or when <name> is listed in
#   $ECR_FLEET_AUTH_STUB_FAIL (space-separated).
# - "<name> install ... amazon-ecr-credential-helper" installs $STUB_DIR/payload (the real
#   helper binary) as /usr/bin/docker-credential-ecr-login (or $ECR_FLEET_AUTH_STUB_TARGET), as the
#   package would. With
#   --download-only (apt-get) or --downloadonly (dnf, yum) it only "downloads" ($STUB_DIR/downloaded);
#   with --no-download (apt-get) or --cacheonly (dnf, yum) it installs only what was downloaded.
# - While $STUB_DIR/transaction-seconds exists, an install that installs (the transaction) first
#   sleeps that many seconds, appending "<name> transaction done" to calls.log when it ends.
# - While $STUB_DIR/already-installed exists, install succeeds without installing anything, as
#   a package manager does for a package it believes installed (its binary deleted by hand).
# - Amazon Linux 2: while $STUB_DIR/needs-extras exists, yum cannot find the package until
#   "amazon-linux-extras enable docker" has created $STUB_DIR/extras-enabled.
set -u

name=$(basename -- "$0")
dir=${ECR_FLEET_AUTH_STUB_DIR:-/opt/stub}
echo "$name $*" >>"$dir/calls.log"

case " ${ECR_FLEET_AUTH_STUB_FAIL:-} " in
  *" $name "*) echo "$name: failing as asked (ECR_FLEET_AUTH_STUB_FAIL)" >&2 && exit 1 ;;
esac
if [ -e "$dir/fail-$name" ]; then
  echo "$name: failing as asked ($dir/fail-$name)" >&2
  exit 1
fi

case "$name $*" in
  "amazon-linux-extras enable docker"*)
    touch "$dir/extras-enabled"
    ;;
  *" install "*amazon-ecr-credential-helper*)
    if [ "$name" = yum ] && [ -e "$dir/needs-extras" ] && [ ! -e "$dir/extras-enabled" ]; then
      echo "No package amazon-ecr-credential-helper available." >&2
      exit 1
    fi
    case " $* " in
      *" --download-only "* | *" --downloadonly "*) touch "$dir/downloaded" && exit 0 ;;
      *" --no-download "* | *" --cacheonly "*)
        [ -e "$dir/downloaded" ] || { echo "$name: nothing downloaded to install from" >&2 && exit 1; }
        ;;
    esac
    [ -e "$dir/already-installed" ] && exit 0
    if [ -e "$dir/transaction-seconds" ]; then
      sleep "$(cat "$dir/transaction-seconds")"
      echo "$name transaction done" >>"$dir/calls.log"
    fi
    install -m 0755 "$dir/payload" "${ECR_FLEET_AUTH_STUB_TARGET:-/usr/bin/docker-credential-ecr-login}"
    ;;
esac
exit 0
