{{/* Chart name. */}}
{{- define "shoal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name when it already contains the chart's. */}}
{{- define "shoal.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "shoal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "shoal.labels" -}}
helm.sh/chart: {{ include "shoal.chart" . }}
{{ include "shoal.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shoal
{{- end }}

{{- define "shoal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shoal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "shoal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shoal.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "shoal.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The quick-start Redis' name. */}}
{{- define "shoal.redisName" -}}
{{- printf "%s-redis" (include "shoal.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Whether sessions live in Redis (any of the three ways to name one). */}}
{{- define "shoal.usesRedis" -}}
{{- if or .Values.redis.enabled .Values.redis.existingSecret .Values.redis.url }}true{{ end }}
{{- end }}

{{/* The Secret and key holding the Redis URL. */}}
{{- define "shoal.redisSecretName" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecret }}{{ else }}{{ printf "%s-redis-url" (include "shoal.fullname" .) | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}
{{- define "shoal.redisSecretKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}url{{ end }}
{{- end }}

{{/* The Secret holding static tokens. */}}
{{- define "shoal.tokensSecretName" -}}
{{- if .Values.shoal.auth.static.existingSecret }}{{ .Values.shoal.auth.static.existingSecret }}{{ else }}{{ printf "%s-tokens" (include "shoal.fullname" .) | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}
{{- define "shoal.tokensSecretKey" -}}
{{- if .Values.shoal.auth.static.existingSecret }}{{ .Values.shoal.auth.static.existingSecretKey }}{{ else }}tokens{{ end }}
{{- end }}

{{/* The public URL clients use. */}}
{{- define "shoal.publicUrl" -}}
{{- if .Values.shoal.publicUrl }}
{{- .Values.shoal.publicUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- printf "%s://%s/mcp" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) $host }}
{{- else }}
{{- printf "http://%s.%s.svc:%d/mcp" (include "shoal.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}
{{- end }}

{{/* Host headers accepted: the Service's DNS names, the Ingress hosts and shoal.allowedHosts. */}}
{{- define "shoal.allowedHosts" -}}
{{- $name := include "shoal.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $hosts := list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.cluster.local" $name $ns) }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- end }}
{{- $hosts = concat $hosts .Values.shoal.allowedHosts }}
{{- join "," (uniq $hosts) }}
{{- end }}

{{/* SHOAL_REQUIRED_SCOPES and SHOAL_TOOL_SCOPES of a jwt or oauth values block, as ConfigMap
     lines indented for its data. */}}
{{- define "shoal.scopeSettings" -}}
{{- if .requiredScopes }}
  SHOAL_REQUIRED_SCOPES: {{ join "," .requiredScopes | quote }}
{{- end }}
{{- if .toolScopes }}
{{- $scopes := list }}
{{- range $tool, $needed := .toolScopes }}
{{- $scopes = append $scopes (printf "%s=%s" $tool (join " " $needed)) }}
{{- end }}
  SHOAL_TOOL_SCOPES: {{ join ";" $scopes | quote }}
{{- end }}
{{- end }}

{{/* The Secret of the oauth signing keys; empty outside oauth mode or without one. */}}
{{- define "shoal.signingKeysSecret" -}}
{{- if eq .Values.shoal.auth.mode "oauth" }}{{ .Values.shoal.auth.oauth.signingKeys.existingSecret }}{{ end }}
{{- end }}

{{/* Where the oauth signing keys are mounted, and the file in that directory. */}}
{{- define "shoal.signingKeysDir" -}}/etc/shoal/oauth{{- end }}
{{- define "shoal.signingKeysFile" -}}{{ include "shoal.signingKeysDir" . }}/signing-keys.pem{{- end }}

{{/* The oauth upstream URLs: the issuer, or a plain OAuth 2 provider's three endpoints. */}}
{{- define "shoal.upstreamUrls" -}}
{{- with .Values.shoal.auth.oauth }}
{{- join " " (compact (list .upstreamIssuer .upstreamAuthorizationEndpoint .upstreamTokenEndpoint .upstreamUserinfoEndpoint)) }}
{{- end }}
{{- end }}

{{/* The distinct ports other than 443 that the oauth upstream URLs name, space-separated, in
     the order of the values (the NetworkPolicy opens 443 anyway). */}}
{{- define "shoal.upstreamPorts" -}}
{{- $ports := list }}
{{- range splitList " " (include "shoal.upstreamUrls" .) }}
{{- $port := regexFind ":[0-9]+$" (urlParse .).host | trimPrefix ":" }}
{{- if and $port (ne $port "443") }}
{{- $ports = append $ports $port }}
{{- end }}
{{- end }}
{{- join " " (uniq $ports) }}
{{- end }}

{{/* Whole seconds of a "Ns" duration. */}}
{{- define "shoal.seconds" -}}
{{- trimSuffix "s" . | int }}
{{- end }}

{{/* Refuse combinations that cannot work, at render time. */}}
{{- define "shoal.validate" -}}
{{- if and (eq .Values.shoal.auth.mode "none") (not .Values.shoal.auth.allowUnauthenticated) }}
{{- fail "shoal.auth.mode=none listens on 0.0.0.0 without authentication: set shoal.auth.allowUnauthenticated=true (only behind a gateway that authenticates), or use shoal.auth.mode=static, jwt or oauth" }}
{{- end }}
{{- if and .Values.shoal.auth.allowUnauthenticated (ne .Values.shoal.auth.mode "none") }}
{{- fail "shoal.auth.allowUnauthenticated applies to shoal.auth.mode=none only" }}
{{- end }}
{{- if eq .Values.shoal.auth.mode "static" }}
{{- if not (or .Values.shoal.auth.static.existingSecret .Values.shoal.auth.static.tokens) }}
{{- fail "shoal.auth.mode=static needs its tokens, and the chart never generates one (it would change on every render: helm template, Argo CD, Flux): set shoal.auth.static.existingSecret to a Secret you manage holding name=token,name2=token2 (key shoal.auth.static.existingSecretKey), or shoal.auth.static.tokens to that value" }}
{{- end }}
{{- if and .Values.shoal.auth.static.existingSecret .Values.shoal.auth.static.tokens }}
{{- fail "shoal.auth.static.existingSecret and shoal.auth.static.tokens exclude each other" }}
{{- end }}
{{- end }}
{{- if and (eq .Values.shoal.auth.mode "jwt") (not .Values.shoal.auth.jwt.issuer) }}
{{- fail "shoal.auth.mode=jwt needs shoal.auth.jwt.issuer" }}
{{- end }}
{{- if eq .Values.shoal.auth.mode "oauth" }}
{{- with .Values.shoal.auth.oauth }}
{{- $endpoints := dict "upstreamAuthorizationEndpoint" .upstreamAuthorizationEndpoint "upstreamTokenEndpoint" .upstreamTokenEndpoint "upstreamUserinfoEndpoint" .upstreamUserinfoEndpoint }}
{{- $given := list }}
{{- $missing := list }}
{{- range $key := list "upstreamAuthorizationEndpoint" "upstreamTokenEndpoint" "upstreamUserinfoEndpoint" }}
{{- if get $endpoints $key }}
{{- $given = append $given (printf "shoal.auth.oauth.%s" $key) }}
{{- else }}
{{- $missing = append $missing (printf "shoal.auth.oauth.%s" $key) }}
{{- end }}
{{- end }}
{{- if and .upstreamIssuer $given }}
{{- fail (printf "the upstream provider is given twice: shoal.auth.oauth.upstreamIssuer (an OpenID provider) and %s (a plain OAuth 2 provider); set one" (join ", " $given)) }}
{{- end }}
{{- if and .upstreamIssuer .upstreamSubjectField }}
{{- fail "shoal.auth.oauth.upstreamSubjectField is for a plain OAuth 2 provider: with shoal.auth.oauth.upstreamIssuer the user is the id_token's sub; leave it empty" }}
{{- end }}
{{- if and $given $missing }}
{{- fail (printf "a plain OAuth 2 upstream provider needs all of shoal.auth.oauth.upstreamAuthorizationEndpoint, upstreamTokenEndpoint and upstreamUserinfoEndpoint; missing: %s" (join ", " $missing)) }}
{{- end }}
{{- if not (or .upstreamIssuer $given) }}
{{- fail "shoal.auth.mode=oauth needs shoal.auth.oauth.upstreamIssuer, the OpenID provider users sign in at (e.g. https://kc.example.com/realms/mcp), or the three endpoints of a plain OAuth 2 provider such as GitHub: shoal.auth.oauth.upstreamAuthorizationEndpoint, upstreamTokenEndpoint and upstreamUserinfoEndpoint" }}
{{- end }}
{{- if not .upstreamClientId }}
{{- fail "shoal.auth.mode=oauth needs shoal.auth.oauth.upstreamClientId: Shoal's client id at the upstream provider" }}
{{- end }}
{{- if not .clientSecret.existingSecret }}
{{- fail "shoal.auth.mode=oauth needs shoal.auth.oauth.clientSecret.existingSecret: a Secret you manage holding Shoal's client secret at the upstream provider (key shoal.auth.oauth.clientSecret.existingSecretKey); the chart never generates secrets" }}
{{- end }}
{{- end }}
{{- if not .Values.shoal.publicUrl }}
{{- fail "shoal.auth.mode=oauth needs shoal.publicUrl, the URL browsers and clients reach Shoal at (e.g. https://mcp.example.com/mcp): its origin is the issuer of Shoal's tokens, and the upstream provider must have <origin>/oauth/callback registered as Shoal's redirect URI" }}
{{- end }}
{{- end }}
{{- if not (include "shoal.usesRedis" .) }}
{{- if .Values.autoscaling.enabled }}
{{- fail "autoscaling.enabled needs a shared session host: set redis.existingSecret (or redis.url, or redis.enabled for a quick start)" }}
{{- end }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount > 1 needs a shared session host: set redis.existingSecret (or redis.url, or redis.enabled for a quick start)" }}
{{- end }}
{{- end }}
{{- if and .Values.redis.enabled (or .Values.redis.existingSecret .Values.redis.url) }}
{{- fail "redis.enabled (the quick-start Redis) and redis.existingSecret/redis.url exclude each other" }}
{{- end }}
{{- end }}
