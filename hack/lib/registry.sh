# Registry helpers shared by hack/images.sh and hack/run.sh: sourced, not run.

# Whether REGISTRY (HOST:PORT) speaks plain HTTP: loopback, and the local cluster's
# registry on its node address.
plain_http_registry() {
  case $1 in
  127.* | localhost:* | 10.244.0.1:*) return 0 ;;
  *) return 1 ;;
  esac
}
