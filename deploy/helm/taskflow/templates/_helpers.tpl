{{/* Names and labels, the usual Helm way: names cut to 63 characters, as Kubernetes requires. */}}
{{- define "taskflow.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "taskflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "taskflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "taskflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (mcp, chat, worker, ...): call with (list $ "mcp"). */}}
{{- define "taskflow.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "taskflow.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "taskflow.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The in-cluster names of the tool server's Service, as Host headers /mcp must accept. */}}
{{- define "taskflow.mcpAllowedHosts" -}}
{{- $svc := printf "%s-mcp" (include "taskflow.fullname" .) }}
{{- $hosts := list (printf "%s:*" $svc) (printf "%s.%s:*" $svc .Release.Namespace) (printf "%s.%s.svc:*" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local:*" $svc .Release.Namespace) "localhost:*" "127.0.0.1:*" }}
{{- concat $hosts .Values.mcp.extraAllowedHosts | join "," }}
{{- end }}

{{/* Environment every TaskFlow process gets: the database, the app token, and how events are published. */}}
{{- define "taskflow.commonEnv" -}}
- name: TASKFLOW_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.existingSecret }}
      key: {{ .Values.secrets.keys.databaseUrl }}
- name: APP_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.existingSecret }}
      key: {{ .Values.secrets.keys.appApiToken }}
- name: TASKFLOW_TIMEZONE
  value: {{ .Values.config.timezone | quote }}
- name: TASKFLOW_EVENT_TRANSPORT
  value: dapr
- name: TASKFLOW_PUBSUB_NAME
  value: {{ .Values.pubsub.name | quote }}
- name: TASKFLOW_LOG_FORMAT
  value: {{ .Values.config.logFormat | quote }}
{{- with .Values.config.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Dapr sidecar annotations shared by every app (the app id, port and protocol are added per app). */}}
{{- define "taskflow.daprAnnotations" -}}
dapr.io/enabled: "true"
dapr.io/config: {{ include "taskflow.fullname" . }}
dapr.io/log-level: {{ .Values.dapr.logLevel | quote }}
{{- end }}

{{/* Prometheus scrapes /metrics on the app's own port; call with (list . port). */}}
{{- define "taskflow.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ index . 1 | quote }}
prometheus.io/path: /metrics
{{- end }}

{{/* The image runs as uid 10001 with a read-only root: scratch space and Chainlit's files live in emptyDirs. */}}
{{- define "taskflow.volumes" -}}
- name: tmp
  emptyDir: {}
- name: home
  emptyDir: {}
{{- end }}

{{- define "taskflow.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /home/taskflow
{{- end }}

{{- define "taskflow.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The chat's public address: chat.publicUrl, else the ingress's first host (https when it has TLS). */}}
{{- define "taskflow.chatPublicUrl" -}}
{{- if .Values.chat.publicUrl -}}
{{- .Values.chat.publicUrl -}}
{{- else if and .Values.chat.ingress.enabled .Values.chat.ingress.hosts -}}
{{- printf "%s://%s" (ternary "https" "http" (not (empty .Values.chat.ingress.tls))) (first .Values.chat.ingress.hosts).host -}}
{{- end -}}
{{- end }}
