# Certificates made at run time with openssl, for the demo and the daemon benchmark: one CA
# and the leaf certificates signed by it (P-256 keys, valid two days). Source this file.
#
#   pki_ca DIR CN LOG                  DIR/openssl.cnf, DIR/ca.key, DIR/ca.crt
#   pki_issue DIR NAME CN server|client LOG
#                                      DIR/NAME.key, DIR/NAME.crt (server: serverAuth for
#                                      127.0.0.1 and localhost; client: clientAuth)
# Each returns non-zero when openssl fails; its messages go to LOG.

pki_newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

pki_ca() {
  cat >"$1/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
CNF
  openssl req -x509 -config "$1/openssl.cnf" -extensions ca "${pki_newkey[@]}" \
    -keyout "$1/ca.key" -subj "/CN=$2" -days 2 -out "$1/ca.crt" 2>>"$3"
}

pki_issue() {
  openssl req -new -config "$1/openssl.cnf" "${pki_newkey[@]}" -keyout "$1/$2.key" \
    -subj "/CN=$3" -out "$1/$2.csr" 2>>"$5" &&
    openssl x509 -req -in "$1/$2.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial \
      -days 2 -extfile "$1/openssl.cnf" -extensions "$4" -out "$1/$2.crt" 2>>"$5"
}
