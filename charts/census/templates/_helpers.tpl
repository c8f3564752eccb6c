{{/* The chart name, cut to fit a DNS label. */}}
{{- define "census.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The object-name prefix: fullnameOverride, else the release name when it already contains the
chart name (`helm install census ...` gives "census"), else RELEASE-census. Cut so that the longest
suffix ("-server" plus a pod ordinal) still fits a DNS label.
*/}}
{{- define "census.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The StatefulSet, and the headless Service that gives its pods stable DNS names. */}}
{{- define "census.serverName" -}}
{{- printf "%s-server" (include "census.fullname" .) -}}
{{- end -}}

{{/* The client Service (HTTP 8500, DNS 8600): what apps and sidecars talk to. */}}
{{- define "census.clientName" -}}
{{- include "census.fullname" . -}}
{{- end -}}

{{/* The client-agent DaemonSet (client.enabled), and the node-local Service in front of it. */}}
{{- define "census.clientAgentName" -}}
{{- printf "%s-client" (include "census.fullname" .) -}}
{{- end -}}

{{- define "census.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels every object carries. */}}
{{- define "census.labels" -}}
helm.sh/chart: {{ include "census.chart" . }}
{{ include "census.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: census
{{- end -}}

{{- define "census.selectorLabels" -}}
app.kubernetes.io/name: {{ include "census.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels and selector labels of one component: (dict "ctx" $ "component" "server"). */}}
{{- define "census.componentLabels" -}}
{{ include "census.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "census.componentSelectorLabels" -}}
{{ include "census.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "census.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "census.serverName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* REPOSITORY:TAG of (dict "image" .Values.x.image "ctx" $); an empty tag falls back to image.tag. */}}
{{- define "census.image" -}}
{{- $tag := default .ctx.Values.image.tag .image.tag -}}
{{- printf "%s:%s" .image.repository (toString $tag) -}}
{{- end -}}

{{/* The DNS suffix of in-cluster Service names: "svc" or "svc.CLUSTER_DOMAIN". */}}
{{- define "census.svcSuffix" -}}
{{- if .Values.clusterDomain -}}
{{- printf "svc.%s" (trimSuffix "." .Values.clusterDomain) -}}
{{- else -}}
svc
{{- end -}}
{{- end -}}

{{/* The stable Raft address of every server pod, HOST:8300, one per line. */}}
{{- define "census.peers" -}}
{{- $server := include "census.serverName" . -}}
{{- $suffix := include "census.svcSuffix" . -}}
{{- range $i := until (int .Values.server.replicas) }}
{{ printf "%s-%d.%s.%s.%s:8300" $server $i $server $.Release.Namespace $suffix }}
{{- end -}}
{{- end -}}

{{/* The client Service's HTTP address, as the sidecars take it (HOST:PORT). */}}
{{- define "census.clientAddr" -}}
{{- printf "%s.%s.%s:8500" (include "census.clientName" .) .Release.Namespace (include "census.svcSuffix" .) -}}
{{- end -}}

{{/* A container securityContext that meets the Pod Security "restricted" profile. */}}
{{- define "census.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The pod securityContext of the demo pods: (dict "uid" N "gid" N). */}}
{{- define "census.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Downward-API environment: the pod's name, namespace, IP and node. */}}
{{- define "census.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- end -}}

{{/* The Secret holding the ACL management token. */}}
{{- define "census.aclSecretName" -}}
{{- .Values.acl.managementTokenSecret | default (printf "%s-acl-management" (include "census.fullname" .)) -}}
{{- end -}}

{{/*
The agent's `acl` block, given through CENSUS_LOCAL_CONFIG (Kubernetes expands $(VAR) in env
values); `server` adds the management token as initial_management and as the pod's own
CONSUL_HTTP_TOKEN (for the preStop hand-over and `kubectl exec … census`).
*/}}
{{- define "census.aclEnv" -}}
{{- if .ctx.Values.acl.enabled }}
{{- $acl := dict "enabled" true "default_policy" .ctx.Values.acl.defaultPolicy -}}
{{- if .server }}
- name: CENSUS_ACL_MANAGEMENT_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "census.aclSecretName" .ctx }}
      key: token
- name: CONSUL_HTTP_TOKEN
  value: "$(CENSUS_ACL_MANAGEMENT_TOKEN)"
{{- $_ := set $acl "tokens" (dict "initial_management" "$(CENSUS_ACL_MANAGEMENT_TOKEN)") -}}
{{- end }}
- name: CENSUS_LOCAL_CONFIG
  value: {{ dict "acl" $acl | toJson | quote }}
{{- end }}
{{- end -}}
