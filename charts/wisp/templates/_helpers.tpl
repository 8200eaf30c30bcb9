{{/* Names shared by every template. */}}
{{- define "wisp.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "wisp.labels" -}}
app.kubernetes.io/part-of: wisp
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "wisp.controlPlane.selector" -}}
app.kubernetes.io/name: wisp-control-plane
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wisp.node.selector" -}}
app.kubernetes.io/name: wisp-node
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The control plane's Service DNS name, which agents dial. */}}
{{- define "wisp.controlPlane.host" -}}
wisp-control-plane.{{ .Release.Namespace }}.svc
{{- end }}

{{/* Non-empty when install-cni holds an API token: for the plugin's label reads (cni.readLabels),
     or to ask at exit whether its DaemonSet is deleted (cni.removeOnExit off). */}}
{{- define "wisp.cni.apiToken" -}}
{{- if and .Values.cni.enabled (or .Values.cni.readLabels (not .Values.cni.removeOnExit)) }}true{{ end }}
{{- end }}
