"""os-release parsing: shell-style quoting, the distribution it names, and the OSV ecosystem
and release its packages get."""

from __future__ import annotations

import pytest

from seawall.scan.inventory import Package
from seawall.scan.inventory.apk import parse_apk_installed
from seawall.scan.inventory.dpkg import parse_dpkg_status
from seawall.scan.inventory.osrelease import (
    RPM_ECOSYSTEMS,
    Distro,
    distro,
    distro_qualifier,
    is_os_release,
    package_ecosystem,
    parse_os_release,
    release_ecosystem,
)
from seawall.scan.inventory.rpm import parse_rpmdb
from seawall.scan.matching import package_ecosystem as matching_key
from seawall.scan.versions import version_key
from tests.support.rpmdbs import header, write_ndb

DEBIAN = b"""\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""

ALPINE = b"""\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
"""


def test_debian() -> None:
    fields = parse_os_release(DEBIAN)
    assert fields["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert fields["VERSION_CODENAME"] == "bookworm"
    found = distro(fields)
    assert found == Distro("debian", "12", "Debian GNU/Linux 12 (bookworm)")
    assert distro_qualifier(found) == "debian-12"


def test_alpine() -> None:
    assert distro(parse_os_release(ALPINE)) == Distro("alpine", "3.19.1", "Alpine Linux v3.19")


def test_quoting_comments_and_bad_lines() -> None:
    data = (
        b"# a comment\n"
        b"A='single quoted $HOME'\n"
        b'B="escaped \\"quote\\" and \\$dollar"\n'
        b'E="keeps \\n literal"\n'
        b"C=unterminated 'quote\n"
        b"not an assignment\n"
        b"9X=bad key\n"
        b"D=\n"
        b"ID=first\n"
        b"ID=Last\n"
    )
    fields = parse_os_release(data)
    assert fields == {
        "A": "single quoted $HOME",
        "B": 'escaped "quote" and $dollar',
        "D": "",
        "E": "keeps \\n literal",
        "ID": "Last",
    }
    assert distro(fields) == Distro("last", None)
    assert distro_qualifier(distro(fields)) is None


@pytest.mark.parametrize("data", [b"", b"\xff\xfe\x00", b"=\n==\n", b"ID\n"])
def test_nothing_to_find(data: bytes) -> None:
    assert distro(parse_os_release(data)) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("etc/os-release", True),
        ("/usr/lib/os-release", True),
        ("etc/lsb-release", False),
        ("opt/etc/os-release", False),
    ],
)
def test_is_os_release(path: str, expected: bool) -> None:
    assert is_os_release(path) is expected


def test_a_nul_is_replaced_like_an_undecodable_byte() -> None:
    fields = parse_os_release(b"ID=deb\0ian\nVERSION_ID=\xff12\n")
    assert fields == {"ID": "deb\ufffdian", "VERSION_ID": "\ufffd12"}


# -- distributions and their OSV ecosystems ----------------------------------------------------
# Each image's os-release as the distribution ships it (trimmed of URLs), the package manager
# its packages are in, the ecosystem its packages get, and the key they are matched under.

UBUNTU_2204 = """\
PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
"""
DISTROLESS_12 = """\
PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="12"
VERSION="Debian GNU/Linux 12 (bookworm)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
"""
WOLFI = """\
ID=wolfi
NAME="Wolfi"
PRETTY_NAME="Wolfi"
VERSION_ID="20230201"
HOME_URL="https://wolfi.dev"
"""
CHAINGUARD = """\
ID=chainguard
NAME="Chainguard"
PRETTY_NAME="Chainguard"
VERSION_ID="20230214"
HOME_URL="https://chainguard.dev/"
"""
UBI_9 = """\
NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.3"
"""
RHEL_8 = """\
NAME="Red Hat Enterprise Linux"
VERSION="8.9 (Ootpa)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="8.9"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Red Hat Enterprise Linux 8.9 (Ootpa)"
"""
ROCKY_9 = """\
NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
CPE_NAME="cpe:/o:rocky:rocky:9::baseos"
"""
ALMA_8 = """\
NAME="AlmaLinux"
VERSION="8.9 (Midnight Oncilla)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="8.9"
PLATFORM_ID="platform:el8"
PRETTY_NAME="AlmaLinux 8.9 (Midnight Oncilla)"
"""
AMAZON_2 = """\
NAME="Amazon Linux"
VERSION="2"
ID="amzn"
ID_LIKE="centos rhel fedora"
VERSION_ID="2"
PRETTY_NAME="Amazon Linux 2"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2"
"""
AMAZON_2023 = """\
NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PLATFORM_ID="platform:al2023"
PRETTY_NAME="Amazon Linux 2023"
"""
CENTOS_7 = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
"""
LEAP_155 = """\
NAME="openSUSE Leap"
VERSION="15.5"
ID="opensuse-leap"
ID_LIKE="suse opensuse"
VERSION_ID="15.5"
PRETTY_NAME="openSUSE Leap 15.5"
CPE_NAME="cpe:/o:opensuse:leap:15.5"
"""
TUMBLEWEED = """\
NAME="openSUSE Tumbleweed"
# VERSION="20240101"
ID="opensuse-tumbleweed"
ID_LIKE="opensuse suse"
VERSION_ID="20240101"
PRETTY_NAME="openSUSE Tumbleweed"
"""
SLES_155 = """\
NAME="SLES"
VERSION="15-SP5"
VERSION_ID="15.5"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"
ID="sles"
ID_LIKE="suse"
CPE_NAME="cpe:/o:suse:sles:15:sp5"
"""
SLES_SAP_154 = """\
NAME="SLES_SAP"
VERSION="15-SP4"
VERSION_ID="15.4"
PRETTY_NAME="SUSE Linux Enterprise Server for SAP Applications 15 SP4"
ID="sles_sap"
ID_LIKE="suse"
"""
SLE_MICRO_55 = """\
NAME="SLE Micro"
VERSION="5.5"
VERSION_ID="5.5"
PRETTY_NAME="SUSE Linux Enterprise Micro 5.5"
ID="sle-micro"
ID_LIKE="suse"
"""
PHOTON_5 = """\
NAME="VMware Photon OS"
VERSION="5.0"
ID=photon
VERSION_ID=5.0
PRETTY_NAME="VMware Photon OS/Linux"
"""
FEDORA_39 = """\
NAME="Fedora Linux"
VERSION="39 (Container Image)"
ID=fedora
VERSION_ID=39
PRETTY_NAME="Fedora Linux 39 (Container Image)"
"""

DISTRIBUTIONS = [
    ("debian", DEBIAN.decode(), "dpkg", "Debian", "Debian:12"),
    ("distroless", DISTROLESS_12, "dpkg", "Debian", "Debian:12"),
    ("ubuntu", UBUNTU_2204, "dpkg", "Ubuntu", "Ubuntu:22.04"),
    ("alpine", ALPINE.decode(), "apk", "Alpine", "Alpine:v3.19"),
    ("wolfi", WOLFI, "apk", "Wolfi", "Wolfi"),
    ("chainguard", CHAINGUARD, "apk", "Chainguard", "Chainguard"),
    ("ubi9", UBI_9, "rpm", "Red Hat", "Red Hat:9"),
    ("rhel8", RHEL_8, "rpm", "Red Hat", "Red Hat:8"),
    ("rocky9", ROCKY_9, "rpm", "Rocky Linux", "Rocky Linux:9"),
    ("alma8", ALMA_8, "rpm", "AlmaLinux", "AlmaLinux:8"),
    ("leap", LEAP_155, "rpm", "openSUSE", "openSUSE:Leap 15.5"),
    ("tumbleweed", TUMBLEWEED, "rpm", "openSUSE", "openSUSE:Tumbleweed"),
    ("sles", SLES_155, "rpm", "SUSE", "SUSE:Linux Enterprise Server 15 SP5"),
    (
        "sles_sap",
        SLES_SAP_154,
        "rpm",
        "SUSE",
        "SUSE:Linux Enterprise Server for SAP Applications 15 SP4",
    ),
    ("sle-micro", SLE_MICRO_55, "rpm", "SUSE", "SUSE:Linux Enterprise Micro 5.5"),
    ("photon", PHOTON_5, "rpm", "Photon OS", "Photon OS:5.0"),
    # No OSV ecosystem: listed, never matched.
    ("amazon2", AMAZON_2, "rpm", "RPM", None),
    ("amazon2023", AMAZON_2023, "rpm", "RPM", None),
    ("centos7", CENTOS_7, "rpm", "RPM", None),
    ("fedora", FEDORA_39, "rpm", "RPM", None),
    # A database of another manager than the distribution's keeps its own default.
    ("rpm-on-ubuntu", UBUNTU_2204, "rpm", "RPM", None),
    ("apk-on-rhel", UBI_9, "apk", "Alpine", None),
]


def _one_package(manager: str, found: Distro | None) -> Package:
    if manager == "dpkg":
        status = b"Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\n"
        (package,) = parse_dpkg_status(status, "var/lib/dpkg/status", found)
    elif manager == "apk":
        (package,) = parse_apk_installed(
            b"P:zlib\nV:1.3.1-r0\nA:x86_64\n", "lib/apk/db/installed", found
        )
    else:
        data = write_ndb([(1, header("zlib", "1.2.13", "1"))])
        (package,) = parse_rpmdb(data, "usr/lib/sysimage/rpm/Packages.db", found)
    return package


@pytest.mark.parametrize(
    ("text", "manager", "ecosystem", "key"),
    [pytest.param(*case[1:], id=case[0]) for case in DISTRIBUTIONS],
)
def test_distribution_ecosystems(text: str, manager: str, ecosystem: str, key: str | None) -> None:
    found = distro(parse_os_release(text.encode()))
    package = _one_package(manager, found)
    assert package.ecosystem == ecosystem
    assert matching_key(package, found) == key
    if key is not None:
        assert found is not None and release_ecosystem(found) == key
        # The ecosystem orders its versions (the installed one parses).
        assert version_key(key, package.version) is not None


def test_releases_without_pretty_names_or_versions() -> None:
    # Inventories stored before PRETTY_NAME was kept: SUSE falls back to VERSION_ID.
    assert release_ecosystem(Distro("sles", "15.5")) == "SUSE:Linux Enterprise Server 15 SP5"
    assert release_ecosystem(Distro("sles", "15")) == "SUSE:Linux Enterprise Server 15"
    assert release_ecosystem(Distro("opensuse-leap", "15.5")) == "openSUSE:Leap 15.5"
    assert release_ecosystem(Distro("opensuse-tumbleweed", None)) == "openSUSE:Tumbleweed"
    assert release_ecosystem(Distro("wolfi", None)) == "Wolfi"
    assert release_ecosystem(Distro("debian", None)) is None
    assert release_ecosystem(Distro("alpine", "3.20_alpha20240329")) is None
    assert release_ecosystem(Distro("amzn", "2")) is None
    assert package_ecosystem(None, RPM_ECOSYSTEMS, "RPM") == "RPM"
