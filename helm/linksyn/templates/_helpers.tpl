{{/* Chart name and release-scoped full name. */}}
{{- define "linksyn.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "linksyn.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "linksyn.labels" -}}
app.kubernetes.io/name: {{ include "linksyn.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "graph"). */}}
{{- define "linksyn.selectorLabels" -}}
app.kubernetes.io/name: {{ include "linksyn.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "linksyn.serviceAccountName" -}}
{{- default (include "linksyn.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "linksyn.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "linksyn.gpuImage" -}}
{{- printf "%s:%s" .Values.image.gpuRepository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "linksyn.vllmURL" -}}
{{- printf "http://%s-vllm:%d/v1" (include "linksyn.fullname" .) (int .Values.vllmServer.port) -}}
{{- end -}}

{{/* The explicit model specs of a service that name an external OpenAI-compatible endpoint (the ones
     llm.apiKeySecret's key is for; the in-chart vLLM server never gets it). Call with (dict "root" $ "service" "synth"). */}}
{{- define "linksyn.keyedModels" -}}
{{- $llm := .root.Values.llm -}}
{{- $specs := dict "extractor" (list $llm.extractorModel) "synth" (list $llm.synthModel $llm.refinerModel) -}}
{{- range (index $specs .service) }}{{ if hasPrefix "openai:" . }}{{ . }} {{ end }}{{ end -}}
{{- end -}}

{{/* Model spec of a stage: explicit value, else the in-chart vLLM server, else the embedded CPU model. */}}
{{- define "linksyn.modelSpec" -}}
{{- $root := .root -}}
{{- if .value -}}
{{- .value -}}
{{- else if $root.Values.vllmServer.enabled -}}
{{- printf "openai:%s#%s" (include "linksyn.vllmURL" $root) $root.Values.vllmServer.servedModelName -}}
{{- else -}}
embedded
{{- end -}}
{{- end -}}

{{/* Restricted pod and container security contexts (runAsNonRoot, read-only root, no capabilities). */}}
{{- define "linksyn.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "linksyn.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Where a StatefulSet's volume is mounted; the ConfigMap points the graph snapshots, sampler counters and the
   sink's dataset there. */}}
{{- define "linksyn.dataDir" -}}/var/lib/linksyn{{- end -}}

{{/* Where the Kafka client TLS files and the gRPC server certificate are mounted (from existing Secrets). */}}
{{- define "linksyn.kafkaTlsDir" -}}/etc/linksyn-secrets/kafka-tls{{- end -}}
{{- define "linksyn.grpcTlsDir" -}}/etc/linksyn-secrets/grpc-tls{{- end -}}

{{/* Environment every linksyn container gets: bus, config file, secrets by reference only (the ports come
   per service, in workloads.yaml). */}}
{{- define "linksyn.env" -}}
- name: LINKSYN_CONFIG
  value: /etc/linksyn/config.yaml
- name: LINKSYN_BUS__KIND
  value: kafka
- name: LINKSYN_BUS__KAFKA__BOOTSTRAP
  value: {{ .Values.kafka.bootstrap | quote }}
- name: LINKSYN_BUS__KAFKA__SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- if .Values.kafka.sasl.mechanism }}
- name: LINKSYN_BUS__KAFKA__SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: LINKSYN_BUS__KAFKA__SASL_USERNAME
  value: {{ .Values.kafka.sasl.username | quote }}
{{- end }}
{{- if .Values.kafka.sasl.passwordSecret.name }}
- name: LINKSYN_BUS__KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.passwordSecret.name }}
      key: {{ .Values.kafka.sasl.passwordSecret.key }}
{{- end }}
{{- with .Values.kafka.tls }}
{{- if .secretName }}
{{- if .caKey }}
- name: LINKSYN_BUS__KAFKA__SSL_CAFILE
  value: {{ printf "%s/%s" (include "linksyn.kafkaTlsDir" $) .caKey | quote }}
{{- end }}
{{- if .certKey }}
- name: LINKSYN_BUS__KAFKA__SSL_CERTFILE
  value: {{ printf "%s/%s" (include "linksyn.kafkaTlsDir" $) .certKey | quote }}
{{- end }}
{{- if .keyKey }}
- name: LINKSYN_BUS__KAFKA__SSL_KEYFILE
  value: {{ printf "%s/%s" (include "linksyn.kafkaTlsDir" $) .keyKey | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.grpcTls.secretName }}
- name: LINKSYN_SERVER__TLS_CERT
  value: {{ printf "%s/tls.crt" (include "linksyn.grpcTlsDir" .) | quote }}
- name: LINKSYN_SERVER__TLS_KEY
  value: {{ printf "%s/tls.key" (include "linksyn.grpcTlsDir" .) | quote }}
{{- end }}
{{- if .Values.grpcAuth.secretName }}
- name: LINKSYN_SERVER__GRPC_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.grpcAuth.secretName }}
      key: {{ .Values.grpcAuth.key }}
{{- end }}
- name: HF_HOME
  value: /tmp/hf
- name: HF_HUB_OFFLINE
  value: "1"
- name: NUMBA_CACHE_DIR  # the graph's compiled kernels: the root filesystem is read-only, /tmp is an emptyDir
  value: /tmp/numba
{{- end -}}
