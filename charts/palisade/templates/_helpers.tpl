{{/* Labels on every object. No release-time values (dates, random strings) here. */}}
{{- define "palisade.labels" -}}
app.kubernetes.io/name: palisade
app.kubernetes.io/part-of: palisade
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "palisade.selector" -}}
app.kubernetes.io/name: palisade
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "palisade.tag" -}}
{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* true when the operator labels excluded namespaces (Kubernetes < 1.21). */}}
{{- define "palisade.patchNamespaces" -}}
{{- $mode := toString .Values.rbac.patchNamespaces -}}
{{- if eq $mode "auto" -}}
{{- semverCompare "<1.21-0" .Capabilities.KubeVersion.Version -}}
{{- else -}}
{{- eq $mode "true" -}}
{{- end -}}
{{- end -}}

{{/* The PodDisruptionBudget's group version: policy/v1 from Kubernetes 1.21 on. */}}
{{- define "palisade.pdbApiVersion" -}}
{{- if semverCompare "<1.21-0" .Capabilities.KubeVersion.Version -}}
policy/v1beta1
{{- else -}}
policy/v1
{{- end -}}
{{- end -}}

{{/* Pod and container settings that pass the Pod Security Standards "restricted" level. */}}
{{- define "palisade.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "palisade.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Preferred anti-affinity of one component's replicas over nodes, unless overridden. */}}
{{- define "palisade.affinity" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $custom := index . 2 -}}
{{- if $custom -}}
{{ toYaml $custom }}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "palisade.selector" $root | nindent 12 }}
            app.kubernetes.io/component: {{ $component }}
{{- end -}}
{{- end -}}
