SUMMARY = "ocpp809 gateway: daemon and its runtime companions"
DESCRIPTION = "Everything a factory image needs to run the ocpp809 IEC 104/101 <-> OCPP \
               gateway: the daemon (with its systemd unit and /etc/ocpp809/ocpp809.toml) and \
               the CA certificates for TLS to MQTT brokers."
HOMEPAGE = "https://example.invalid/ocpp809"
BUGTRACKER = "https://example.invalid/ocpp809/issues"
SECTION = "net"
LICENSE = "MIT"

PACKAGE_ARCH = "${TUNE_PKGARCH}"

inherit packagegroup

RDEPENDS:${PN} = "ca-certificates \
                  ocpp809 \
"
