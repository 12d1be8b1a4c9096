#!/bin/sh
# The "untrusted" code of examples/untrusted-code.toml: it reports what it can and cannot do.
echo "uid=$(id -u) gid=$(id -g) host=$(hostname)"
touch /etc/owned 2>/dev/null && echo "wrote /etc" || echo "cannot write /etc"
echo hi > /tmp/scratch && echo "can write /tmp"
