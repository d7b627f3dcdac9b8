# Shared by the scripts in this folder: finding Swift and installing system packages.
# Sourced, not run.

# Debian packages the build and the tests need: libpcap for the Pcap plugin, libzmq for
# the cluster's transport, a C compiler for the C-ABI tests, iproute2 and python3
# (traffic) for the live-capture tests on veth pairs, util-linux (setpriv) to test running
# without privileges; openssh (server and client), rsync and tcpreplay for trawlctl's test of
# a cluster on several hosts (network namespaces with sshd in each); pkg-config, with which a
# C plugin is built against the installed header, as docs/writing-a-plugin.md says.
TRAWL_APT_PACKAGES="libpcap-dev libzmq3-dev gcc libc6-dev iproute2 bash python3 util-linux openssh-server openssh-client rsync tcpreplay pkg-config"

trawl_find_swift() {
    if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
        export PATH="$PATH:/opt/swift/usr/bin"
    fi
    if ! command -v swift >/dev/null 2>&1; then
        echo "error: no Swift toolchain found. Install Swift 6.0 or later (swift.org/install) and put it on PATH." >&2
        exit 1
    fi
}

# Installs what is missing: with apt-get as root, otherwise says what to install.
trawl_install_packages() {
    local missing=()
    for package in $TRAWL_APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: ${missing[*]}" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "error: missing system packages: ${missing[*]}" >&2
        echo "       install them with:  sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
}
