# Certificates and kubeconfigs of the test cluster (sourced by cluster.sh). Made once, kept until `down`.
#
# One CA signs everything. Components authenticate with client certificates whose subject is the
# identity Kubernetes' default RBAC roles expect (system:kube-scheduler, system:node:<name>, ...).

PKI=$STATE/pki

# issue <name> <subject> <extendedKeyUsage> [subjectAltName]: a key and a CA-signed certificate, 10 years.
issue() {
    local name=$1 subject=$2 usage=$3 san=${4:-} ext="$PKI/$1.ext"
    [ -s "$PKI/$name.crt" ] && return
    {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [ -n "$san" ] && echo "subjectAltName=$san"
    } >"$ext"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subject" \
        -out "$PKI/$name.csr" 2>>"$LOGS/pki.log" || die "openssl could not make the $name key" "$LOGS/pki.log"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>>"$LOGS/pki.log" \
        || die "openssl could not sign the $name certificate" "$LOGS/pki.log"
    rm -f "$PKI/$name.csr" "$ext"
    chmod 0600 "$PKI/$name.key"
}

# write_kubeconfig <file> <cert name>: a kubeconfig for the apiserver on loopback with that client certificate.
write_kubeconfig() {
    local file=$1 cert=$2
    [ -s "$file" ] && return
    cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: acc-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI/$cert.key")
contexts:
- name: acc-test
  context: {cluster: acc-test, user: $cert}
current-context: acc-test
EOF
    chmod 0600 "$file.tmp" && mv "$file.tmp" "$file"
}

ensure_pki() {
    mkdir -p "$PKI" "$LOGS"
    chmod 0700 "$PKI"
    if [ ! -s "$PKI/ca.crt" ]; then
        openssl req -x509 -new -newkey rsa:2048 -nodes -days 3650 -sha256 -subj "/CN=accelerator-test-cluster-ca" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>>"$LOGS/pki.log" \
            || die "openssl could not make the cluster CA" "$LOGS/pki.log"
        chmod 0600 "$PKI/ca.key"
    fi
    if [ ! -s "$PKI/sa.key" ]; then
        openssl genrsa -out "$PKI/sa.key" 2048 2>>"$LOGS/pki.log" && chmod 0600 "$PKI/sa.key" \
            && openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>>"$LOGS/pki.log" \
            || die "openssl could not make the service-account key pair" "$LOGS/pki.log"
    fi
    issue apiserver "/CN=kube-apiserver" serverAuth \
        "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_FIRST_IP"
    issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
    issue kubelet-server "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:127.0.0.1"
    issue kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
    issue admin "/O=system:masters/CN=acc-admin" clientAuth
    issue controller-manager "/CN=system:kube-controller-manager" clientAuth
    issue scheduler "/CN=system:kube-scheduler" clientAuth
    write_kubeconfig "$KUBECONFIG_PATH" admin
    write_kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager
    write_kubeconfig "$STATE/scheduler.kubeconfig" scheduler
    write_kubeconfig "$STATE/kubelet.kubeconfig" kubelet
}
