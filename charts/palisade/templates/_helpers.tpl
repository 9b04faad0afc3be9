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

{{/* Anti-affinity of one component's replicas over nodes, unless overridden: preferred, or
required when the pods use the host's ports (hostNetwork). */}}
{{- define "palisade.affinity" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $custom := index . 2 -}}
{{- $required := index . 3 -}}
{{- if $custom -}}
{{ toYaml $custom }}
{{- else if $required -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "palisade.selector" $root | nindent 10 }}
          app.kubernetes.io/component: {{ $component }}
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

{{/* The pod's topologySpreadConstraints: the component's own list, else the zone spread
(empty when turned off). */}}
{{- define "palisade.topologySpread" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $values := index . 2 -}}
{{- if $values.topologySpreadConstraints -}}
{{ toYaml $values.topologySpreadConstraints }}
{{- else if $values.zoneSpread.enabled -}}
- topologyKey: topology.kubernetes.io/zone
  maxSkew: {{ $values.zoneSpread.maxSkew }}
  whenUnsatisfiable: {{ $values.zoneSpread.whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "palisade.selector" $root | nindent 6 }}
      app.kubernetes.io/component: {{ $component }}
{{- end -}}
{{- end -}}

{{/* Seconds in a duration such as 10m, 1h30m or 21d (units d, h, m, s). */}}
{{- define "palisade.seconds" -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+[dhms]" . -1 -}}
{{- $n := regexFind "[0-9]+" . | atoi -}}
{{- $unit := regexFind "[dhms]$" . -}}
{{- $total = add $total (mul $n (get (dict "d" 86400 "h" 3600 "m" 60 "s" 1) $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* The label that marks the metrics Services (what the ServiceMonitor selects). */}}
{{- define "palisade.metricsLabel" -}}
palisade.dev/metrics: "true"
{{- end -}}

{{/*
The node agent's settings, as the operator reads them (PALISADE_AGENT, JSON; see
operator/src/agent/daemonset.rs).
*/}}
{{- define "palisade.agentSettings" -}}
{{- $a := .Values.agent -}}
{{- $args := list (printf "--log-format=%s" .Values.logFormat) (printf "--event-window=%s" $a.eventWindow) (printf "--process-table-capacity=%v" (int $a.processTableCapacity)) (printf "--json-output=%t" $a.jsonOutput) (printf "--report-max-results=%v" (int $a.report.maxResults)) (printf "--report-retention=%s" $a.report.retention) (printf "--rule-docs-url=%s" .Values.ruleDocsUrl) -}}
{{- $pullSecrets := list -}}
{{- range .Values.imagePullSecrets }}{{ $pullSecrets = append $pullSecrets .name }}{{ end -}}
{{- $s := dict
  "image" (printf "%s/%s:%s" .Values.image.registry .Values.image.agentRepository (include "palisade.tag" .))
  "imagePullPolicy" .Values.image.pullPolicy
  "serviceAccount" "palisade-agent"
  "resources" $a.resources
  "tolerations" $a.tolerations
  "nodeSelector" $a.nodeSelector
  "extraCapabilities" $a.extraCapabilities
  "sensor" $a.sensor
  "args" $args
  "logLevel" .Values.logLevel
  "imagePullSecrets" $pullSecrets
  "podAnnotations" $a.podAnnotations -}}
{{- with $a.priorityClassName }}{{ $_ := set $s "priorityClassName" . }}{{ end -}}
{{- toJson $s -}}
{{- end }}
