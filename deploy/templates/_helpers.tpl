{{/* Labels every object of the chart carries. */}}
{{- define "armada.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: armada
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{/* The pull policy of the armada image: the value, else Never for minikube, Always otherwise. */}}
{{- define "armada.pullPolicy" -}}
{{- if .Values.imagePullPolicy }}{{ .Values.imagePullPolicy }}{{ else if eq .Values.distrib "minikube" }}Never{{ else }}Always{{ end }}
{{- end }}

{{/* RABBITMQ_URL of the chart's RabbitMQ. */}}
{{- define "armada.rabbitmqUrl" -}}
amqp://{{ .Values.rabbitmq.username }}:{{ .Values.rabbitmq.password }}@armada-rabbitmq:5672/%2f
{{- end }}

{{/* The four SQL_SERVER_* variables from armada-sql-server-secret. */}}
{{- define "armada.sqlEnv" -}}
{{- range list "SQL_SERVER_NAME" "SQL_SERVER_DB" "SQL_SERVER_USER" "SQL_SERVER_PASSWORD" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: armada-sql-server-secret
      key: {{ . }}
{{- end }}
{{- end }}

{{/*
One armada role: a Deployment running `armada serve --roles <role>` on <port> and its Service.
Arguments: root, name, role, port, values (the role's values), env (YAML list), probePath.
*/}}
{{- define "armada.role" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  labels:
    app: {{ .name }}
    {{- include "armada.labels" (dict "root" $root "name" .name) | nindent 4 }}
spec:
  replicas: {{ .values.replicas }}
  selector:
    matchLabels:
      app: {{ .name }}
  template:
    metadata:
      labels:
        app: {{ .name }}
        {{- include "armada.labels" (dict "root" $root "name" .name) | nindent 8 }}
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
      containers:
        - name: {{ .role }}
          image: "{{ $root.Values.hub }}/armada:{{ $root.Values.tag }}"
          imagePullPolicy: {{ include "armada.pullPolicy" $root }}
          args: ["serve", "--roles", "{{ .role }}", "--listen", "0.0.0.0:{{ .port }}"]
          ports:
            - name: http
              containerPort: {{ .port }}
          env:
            - name: RUST_LOG
              value: {{ $root.Values.logLevel | quote }}
            - name: ARMADA_LOG_FORMAT
              value: {{ $root.Values.logFormat | quote }}
            {{- with $root.Values.corsOrigins }}
            - name: ARMADA_CORS_ORIGINS
              value: {{ . | quote }}
            {{- end }}
            {{- with $root.Values.token.secretName }}
            - name: ARMADA_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ . }}
                  key: ARMADA_TOKEN
            {{- end }}
            {{- with .env }}
            {{- . | trim | nindent 12 }}
            {{- end }}
          {{- with .probePath }}
          livenessProbe:
            httpGet:
              path: {{ . }}
              port: http
            initialDelaySeconds: 5
            periodSeconds: 20
          readinessProbe:
            httpGet:
              path: {{ . }}
              port: http
            periodSeconds: 10
          {{- end }}
          {{- with .values.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  labels:
    app: {{ .name }}
    {{- include "armada.labels" (dict "root" $root "name" .name) | nindent 4 }}
spec:
  selector:
    app: {{ .name }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
{{- end }}
