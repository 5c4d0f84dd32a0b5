{{/* Names, labels and the rules that hold across values. */}}

{{- define "twofold.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object name: the release name when it already contains the chart name. */}}
{{- define "twofold.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "twofold.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "twofold.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: twofold
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "manager"). */}}
{{- define "twofold.selectorLabels" -}}
app.kubernetes.io/name: {{ include "twofold.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's objects; call like twofold.selectorLabels. */}}
{{- define "twofold.componentLabels" -}}
{{ include "twofold.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "twofold.manager.name" -}}{{ include "twofold.fullname" . }}-manager{{- end -}}
{{- define "twofold.core.name" -}}{{ include "twofold.fullname" . }}-core{{- end -}}
{{- define "twofold.webhook.serviceName" -}}{{ include "twofold.fullname" . }}-webhook{{- end -}}
{{- define "twofold.webhook.certSecretName" -}}{{ include "twofold.fullname" . }}-webhook-cert{{- end -}}
{{- define "twofold.webhook.certificateName" -}}{{ include "twofold.fullname" . }}-webhook{{- end -}}

{{/* The admin key Secret: the user's, or the one the chart generates. */}}
{{- define "twofold.adminKey.secretName" -}}
{{- default (printf "%s-admin-key" (include "twofold.fullname" .)) .Values.core.adminKey.existingSecret -}}
{{- end -}}

{{/* image renders repository:tag, the tag defaulting to the chart's appVersion; call with (dict "ctx" $ "image" .Values.core.image). */}}
{{- define "twofold.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* The core's in-cluster base URL. */}}
{{- define "twofold.core.url" -}}
{{- printf "http://%s.%s.svc:%d" (include "twofold.core.name" .) .Release.Namespace (int .Values.core.service.port) -}}
{{- end -}}

{{/* Webhook configuration names are fixed: the manager patches their caBundle by these names. */}}
{{- define "twofold.webhook.mutatingName" -}}twofold-inject{{- end -}}
{{- define "twofold.webhook.validatingName" -}}twofold-check{{- end -}}

{{/* Namespaces never injected or checked: the configured ones plus the release namespace. */}}
{{- define "twofold.webhook.excludedNamespaces" -}}
{{- $ns := list -}}
{{- range .Values.webhook.excludedNamespaces }}{{ $ns = append $ns . }}{{ end -}}
{{- $ns = append $ns .Release.Namespace -}}
{{- $ns | uniq | join "," -}}
{{- end -}}

{{/*
Rules across values that the schema also states; repeated here so that a render with
--skip-schema-validation still fails with the same explanation.
*/}}
{{- define "twofold.validate" -}}
{{- if and (eq .Values.core.database.type "sqlite") (gt (int .Values.core.replicas) 1) -}}
{{- fail (printf "core.replicas is %d but core.database.type is sqlite: SQLite serves a single replica. Set core.replicas=1, or core.database.type=postgres with core.database.postgres.existingSecret naming a Secret that holds the connection string." (int .Values.core.replicas)) -}}
{{- end -}}
{{- if and (eq .Values.core.database.type "postgres") (not .Values.core.database.postgres.existingSecret) -}}
{{- fail "core.database.type is postgres but core.database.postgres.existingSecret is empty: name the Secret that holds the PostgreSQL connection string (key core.database.postgres.key)." -}}
{{- end -}}
{{- end -}}
