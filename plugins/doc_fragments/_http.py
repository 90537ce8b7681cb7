# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""TLS and timeout options of the HTTP modules (PRIVATE to this collection).

Matches TLS_ARGUMENT_SPEC in plugins/module_utils/_http.py.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  validate_certs:
    description:
      - Verify the server's TLS certificate for C(https://) URLs.
      - Leave this on in production; to trust a private CA, set O(ca_path) instead of switching it off.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificate(s) that signed the server certificate.
      - When unset, the system trust store is used.
    type: path
  client_cert:
    description:
      - PEM file with a client certificate for mutual TLS. It may also contain the private key.
    type: path
  client_key:
    description:
      - PEM file with the private key of O(client_cert), when the certificate file does not contain it.
      - Requires O(client_cert).
    type: path
  timeout:
    description:
      - Socket timeout of one HTTP request in seconds (connect and each read).
    type: float
    default: 10.0
requirements:
  - Nothing beyond ansible-core; HTTP goes through C(ansible.module_utils.urls), like M(ansible.builtin.uri).
"""
