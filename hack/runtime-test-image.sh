#!/usr/bin/env bash
# Builds the workload image of the runtime-rule tests (e2e/tests/e2e/runtime) without Docker:
# Debian's busybox-static (a shell and some 300 tools, each a link to one static binary)
# and palisade-probe (hack/runtime-probe.c, compiled static) for what busybox cannot do,
# packed by umoci into an OCI image layout. The layout is cached under
# ~/.cache/palisade/images, keyed by this script, the probe's source and busybox's version.
#
#   hack/runtime-test-image.sh     print the OCI layout's path (building it if missing); the
#                                  image is tagged `latest` inside the layout
#
# Push it with: skopeo copy --dest-tls-verify=false oci:LAYOUT:latest docker://HOST/REPO:TAG
#
# What is in it:
#   /bin/busybox and its applets' links where `busybox --list-full` puts them
#   /usr/local/bin/palisade-probe
#   copies of palisade-probe named /usr/bin/ssh, /usr/sbin/nginx and /sbin/debugfs: some
#     rules key on a program's name or path, and these programs have no static build
#   /etc/passwd, /etc/group and /etc/shadow (root, nobody), /var/log with empty logs
#   /var/www: a web root for busybox httpd, with a CGI script (cgi-bin/status) that runs a
#     shell, as a web shell would
#   default command: busybox httpd on port 8080 in the foreground
#
# Applets are started by absolute path in the tests: busybox's shell runs an applet named
# without a path by re-executing /proc/self/exe, which the kernel then calls `exe`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source=$here/runtime-probe.c
cache=${PALISADE_CACHE:-$HOME/.cache/palisade}/images
tag=latest

"$here/scan-tools.sh" >&2
busybox=/bin/busybox
if [[ ! -x $busybox ]] || readelf -l "$busybox" 2>/dev/null | grep -q INTERP; then
  echo "runtime-test-image: $busybox is missing or not static: install Debian's busybox-static (not busybox)" >&2
  exit 1
fi
busybox_version=$(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null || "$busybox" 2>&1 | head -n 1)
key=$(cat "$0" "$source" <(echo "$busybox_version") | sha256sum | cut -c1-16)
layout=$cache/runtime-test-$key

if [[ -f $layout/index.json && -f $layout/.complete ]]; then
  echo "$layout"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.runtime-test.lock"
flock -w 600 9 || { echo "runtime-test-image: $cache/.runtime-test.lock held for 10 minutes" >&2; exit 1; }
if [[ -f $layout/index.json && -f $layout/.complete ]]; then
  echo "$layout"
  exit 0
fi

work=$(mktemp -d "$cache/.runtime-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/build.log
rootless=()
((EUID == 0)) || rootless=(--rootless)

echo "runtime-test-image: compiling palisade-probe and assembling the root filesystem" >&2
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,tmp,var/log,var/www/cgi-bin,dev,proc,sys}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$busybox" "$root/bin/busybox"
while read -r applet; do
  [[ -e $root/$applet || -L $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)
gcc -static -Os -Wall -Wextra -Werror -o "$root/usr/local/bin/palisade-probe" "$source" >>"$log" 2>&1 || {
  cat "$log" >&2
  exit 1
}
strip "$root/usr/local/bin/palisade-probe"
for name in usr/bin/ssh usr/sbin/nginx sbin/debugfs; do
  cp "$root/usr/local/bin/palisade-probe" "$root/$name"
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
cat >"$root/etc/shadow" <<'EOF'
root:*:19700:0:99999:7:::
nobody:*:19700:0:99999:7:::
EOF
chmod 600 "$root/etc/shadow"
: >"$root/var/log/syslog"
: >"$root/var/log/auth.log"
echo '<html><body>palisade runtime test workload</body></html>' >"$root/var/www/index.html"
cat >"$root/var/www/cgi-bin/status" <<'EOF'
#!/bin/sh
# A CGI script that hands its work to a shell: what a web shell looks like to the kernel.
echo "Content-Type: text/plain"
echo
/bin/sh -c /usr/bin/id
EOF
chmod 755 "$root/var/www/cgi-bin/status"

echo "runtime-test-image: packing with umoci" >&2
umoci init --layout "$work/layout" >>"$log" 2>&1
umoci new --image "$work/layout:$tag" >>"$log" 2>&1
umoci unpack "${rootless[@]}" --image "$work/layout:$tag" "$work/bundle" >>"$log" 2>&1
rm -rf "$work/bundle/rootfs"
mv "$root" "$work/bundle/rootfs"
umoci repack "${rootless[@]}" --image "$work/layout:$tag" "$work/bundle" >>"$log" 2>&1
umoci config --image "$work/layout:$tag" --os linux --architecture "$(dpkg --print-architecture)" \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir / \
  --config.cmd /usr/sbin/httpd --config.cmd -f --config.cmd -p --config.cmd 8080 \
  --config.cmd -h --config.cmd /var/www >>"$log" 2>&1
umoci gc --layout "$work/layout" >>"$log" 2>&1
touch "$work/layout/.complete"
rm -rf "$layout"
mv "$work/layout" "$layout"
echo "$layout"
