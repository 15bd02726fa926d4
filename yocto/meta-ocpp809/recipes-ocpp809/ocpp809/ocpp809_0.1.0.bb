# nooelint: oelint.var.bbclassextend
# (no BBCLASSEXTEND: a target-only daemon; nothing at build time needs a native ocpp809)
SUMMARY = "IEC 60870-5-104/101 station in front of an OCPP 1.6J/2.0.1 central system"
DESCRIPTION = "ocpp809 is a daemon for industrial Linux edge gateways: towards SCADA it is an \
               IEC 60870-5-104 controlled station (and IEC 60870-5-101 secondary on serial \
               lines), towards EV chargers the OCPP 1.6J/2.0.1 central system, with an optional \
               MQTT mirror and Modbus meters."
HOMEPAGE = "https://example.invalid/ocpp809"
BUGTRACKER = "https://example.invalid/ocpp809/issues"
SECTION = "net"
CVE_PRODUCT = "ocpp809"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# Source: the project's git repository at the commit tagged v${PV}.
# SRCREV is a placeholder: set it to the full hash of that tag when you bump the version
# (git rev-parse v${PV}^{commit}); do_fetch fails while the all-zero placeholder is set.
# For local builds from a checkout, do not edit SRC_URI: use externalsrc instead
# (README.md, "Building from a local checkout"):
#   INHERIT += "externalsrc"
#   EXTERNALSRC:pn-ocpp809 = "/path/to/ocpp809"
SRC_URI = "git://example.invalid/ocpp809.git;protocol=https;branch=main"
SRCREV = "0000000000000000000000000000000000000000"
S = "${WORKDIR}/git"

inherit cargo cargo-update-recipe-crates systemd useradd

# crate:// URIs and checksums of every crates.io dependency in Cargo.lock.
# Regenerate with scripts/yocto-crates.py (or `bitbake -c update_crates ocpp809`).
require ${BPN}-crates.inc

# Only the daemon binary: the library target, examples, benches and tests are not needed.
CARGO_BUILD_FLAGS += "--bin ocpp809"

# cargo_do_install (cargo class) installs the ocpp809 binary to ${bindir}.
do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/systemd/ocpp809.service ${D}${systemd_system_unitdir}/ocpp809.service
    # The unit names /usr/bin/ocpp809; follow a distro that moves ${bindir}.
    sed -i -e 's|/usr/bin/ocpp809|${bindir}/ocpp809|g' ${D}${systemd_system_unitdir}/ocpp809.service

    # The commented default configuration, as the Debian package ships it. Its relative
    # state_dir ("./ocpp809-state") resolves below WorkingDirectory=/var/lib/ocpp809 of the
    # unit. Readable by the service group only: it may hold secrets (MQTT, OCPP passwords).
    install -d -m 0750 -g ocpp809 ${D}${sysconfdir}/ocpp809
    install -m 0640 -g ocpp809 ${S}/src/default_config.toml ${D}${sysconfdir}/ocpp809/ocpp809.toml

    # State directory; StateDirectory=ocpp809 in the unit also creates it on a volatile /var.
    install -d -m 0750 -o ocpp809 -g ocpp809 ${D}${localstatedir}/lib/ocpp809
}

USERADD_PACKAGES = "${PN}"
# System user without login shell or home creation; dialout for the IEC 101 / Modbus RTU
# serial ports (/dev/ttyS*, /dev/ttyUSB* are root:dialout).
USERADD_PARAM:${PN} = "--system --user-group --groups dialout --no-create-home \
                       --home-dir ${localstatedir}/lib/ocpp809 --shell ${base_sbindir}/nologin ocpp809"

SYSTEMD_SERVICE:${PN} = "ocpp809.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

FILES:${PN} += "${systemd_system_unitdir}/ocpp809.service \
                ${sysconfdir}/ocpp809 \
                ${localstatedir}/lib/ocpp809 \
"
CONFFILES:${PN} = "${sysconfdir}/ocpp809/ocpp809.toml"

# Trust store for MQTT/TLS (rustls-native-certs reads the system CA bundle).
RDEPENDS:${PN} += "ca-certificates"
