/* Forwarded REST routes and jobs: see forward.h, and the protocol in src/gateway/protocol.ts. */
#define _GNU_SOURCE
#include "forward.h"

#include "json-scan.h"
#include "json-write.h"
#include "wire.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JOB_TYPES 16
#define MAX_NAME 128
#define MAX_URI 4096

static char g_job_types[MAX_JOB_TYPES][MAX_NAME];
static int g_job_type_count;

/* ---- Requests of the gateway to Orthanc ------------------------------------------------- */

static void answer_error(wire_message *answer, int code) {
  json_buffer meta = {0};
  json_raw(&meta, "{\"error\":");
  json_integer(&meta, code);
  json_raw(&meta, "}");
  answer->meta = json_text(&meta) ? meta.data : NULL;
  if (answer->meta == NULL) json_free(&meta);
}

/* Moves an Orthanc buffer into the answer (with error 0), or sets the error. */
static void answer_buffer(wire_message *answer, OrthancPluginErrorCode code, OrthancPluginMemoryBuffer *buffer) {
  if (code != OrthancPluginErrorCode_Success) {
    answer_error(answer, code);
    return;
  }
  if (buffer != NULL && buffer->size > 0) {
    answer->body = malloc(buffer->size);
    if (answer->body == NULL) {
      OrthancPluginFreeMemoryBuffer(plugin_context(), buffer);
      answer_error(answer, OrthancPluginErrorCode_NotEnoughMemory);
      return;
    }
    memcpy(answer->body, buffer->data, buffer->size);
    answer->body_size = buffer->size;
  }
  if (buffer != NULL) OrthancPluginFreeMemoryBuffer(plugin_context(), buffer);
  answer->meta = strdup("{\"error\":0}");
}

/* {"call":"rest","method":"GET|POST|PUT|DELETE","uri":...,"afterPlugins":bool} + body. */
static void call_rest_api(const wire_message *request, wire_message *answer) {
  OrthancPluginContext *context = plugin_context();
  char method[8], uri[MAX_URI];
  if (json_member_string(request->meta, "method", method, sizeof(method)) != 0 ||
      json_member_string(request->meta, "uri", uri, sizeof(uri)) != 0 || request->body_size > UINT32_MAX) {
    answer_error(answer, OrthancPluginErrorCode_ParameterOutOfRange);
    return;
  }
  const char *after = json_member(request->meta, "afterPlugins");
  int after_plugins = after != NULL && strncmp(after, "true", 4) == 0;
  OrthancPluginMemoryBuffer buffer = {0};
  uint32_t size = (uint32_t)request->body_size;
  const void *body = request->body ? request->body : "";
  OrthancPluginErrorCode code;
  if (strcmp(method, "GET") == 0) {
    code = after_plugins ? OrthancPluginRestApiGetAfterPlugins(context, &buffer, uri)
                         : OrthancPluginRestApiGet(context, &buffer, uri);
  } else if (strcmp(method, "POST") == 0) {
    code = after_plugins ? OrthancPluginRestApiPostAfterPlugins(context, &buffer, uri, body, size)
                         : OrthancPluginRestApiPost(context, &buffer, uri, body, size);
  } else if (strcmp(method, "PUT") == 0) {
    code = after_plugins ? OrthancPluginRestApiPutAfterPlugins(context, &buffer, uri, body, size)
                         : OrthancPluginRestApiPut(context, &buffer, uri, body, size);
  } else if (strcmp(method, "DELETE") == 0) {
    code = after_plugins ? OrthancPluginRestApiDeleteAfterPlugins(context, uri) : OrthancPluginRestApiDelete(context, uri);
    answer_buffer(answer, code, NULL);
    return;
  } else {
    answer_error(answer, OrthancPluginErrorCode_ParameterOutOfRange);
    return;
  }
  answer_buffer(answer, code, code == OrthancPluginErrorCode_Success ? &buffer : NULL);
}

static void call_submit_job(const wire_message *request, wire_message *answer);

static void serve_orthanc_request(const wire_message *request, wire_message *answer) {
  char call[32];
  if (json_member_string(request->meta, "call", call, sizeof(call)) != 0) {
    answer_error(answer, OrthancPluginErrorCode_ParameterOutOfRange);
  } else if (strcmp(call, "rest") == 0) {
    call_rest_api(request, answer);
  } else if (strcmp(call, "submit-job") == 0) {
    call_submit_job(request, answer);
  } else {
    answer_error(answer, OrthancPluginErrorCode_NotImplemented);
  }
}

/* ---- Jobs ---------------------------------------------------------------------------------- */

/* A job whose logic lives in the gateway. Its whole state is the serialized JSON the gateway
 * returns after each callback, so a restarted gateway (or Orthanc) carries on from it. */
typedef struct {
  char type[MAX_NAME];
  pthread_mutex_t lock;
  float progress;
  char *content;
  char *serialized;
  char *retired[2]; /* the previous strings, kept one update longer for readers of the old pointers */
} forwarded_job;

/* A job record: meta {"progress":0.5,...}; body "<content JSON>\n<serialized JSON>". */
static int job_apply_record(forwarded_job *job, const wire_message *record) {
  const char *body = record->body;
  const char *newline = body ? memchr(body, '\n', (size_t)record->body_size) : NULL;
  if (newline == NULL) return -1;
  size_t content_length = (size_t)(newline - body);
  char *content = strndup(body, content_length);
  char *serialized = strndup(newline + 1, (size_t)record->body_size - content_length - 1);
  if (content == NULL || serialized == NULL) {
    free(content);
    free(serialized);
    return -1;
  }
  const char *progress = json_member(record->meta, "progress");
  pthread_mutex_lock(&job->lock);
  free(job->retired[0]);
  free(job->retired[1]);
  job->retired[0] = job->content;
  job->retired[1] = job->serialized;
  job->content = content;
  job->serialized = serialized;
  if (progress != NULL) job->progress = strtof(progress, NULL);
  pthread_mutex_unlock(&job->lock);
  return 0;
}

static forwarded_job *job_new(const char *type) {
  forwarded_job *job = calloc(1, sizeof(*job));
  if (job == NULL) return NULL;
  snprintf(job->type, sizeof(job->type), "%s", type);
  pthread_mutex_init(&job->lock, NULL);
  return job;
}

static void job_finalize(void *opaque) {
  forwarded_job *job = opaque;
  free(job->content);
  free(job->serialized);
  free(job->retired[0]);
  free(job->retired[1]);
  pthread_mutex_destroy(&job->lock);
  free(job);
}

static float job_progress(void *opaque) {
  forwarded_job *job = opaque;
  pthread_mutex_lock(&job->lock);
  float progress = job->progress;
  pthread_mutex_unlock(&job->lock);
  return progress;
}

static const char *job_content(void *opaque) {
  forwarded_job *job = opaque;
  pthread_mutex_lock(&job->lock);
  const char *content = job->content ? job->content : "{}";
  pthread_mutex_unlock(&job->lock);
  return content;
}

static const char *job_serialized(void *opaque) {
  forwarded_job *job = opaque;
  pthread_mutex_lock(&job->lock);
  const char *serialized = job->serialized;
  pthread_mutex_unlock(&job->lock);
  return serialized;
}

/* Forwards one job callback ("job.step", "job.stop", "job.reset", "job.unserialize") with the
 * job's state and applies the record the gateway answers. Returns 0, or -1 (logged). */
static int job_forward(forwarded_job *job, const char *callback, const char *reason, const char *state,
                       wire_message *answer) {
  json_buffer meta = {0};
  json_raw(&meta, "{\"type\":");
  json_quoted(&meta, job->type);
  if (reason != NULL) {
    json_raw(&meta, ",\"reason\":");
    json_quoted(&meta, reason);
  }
  json_raw(&meta, "}");
  char failure[1024] = "out of memory";
  int rc = -1;
  if (json_text(&meta) != NULL) {
    rc = wire_invoke(callback, meta.data, state, state ? strlen(state) : 0, serve_orthanc_request, answer, failure,
                     sizeof(failure));
  }
  json_free(&meta);
  if (rc == 0 && job_apply_record(job, answer) != 0) {
    snprintf(failure, sizeof(failure), "the gateway answered an invalid job record");
    wire_message_free(answer);
    rc = -1;
  }
  if (rc != 0) log_message(LOG_ERROR, "%s job: %s failed: %s", job->type, callback, failure);
  return rc;
}

/* The state to send: a copy, since the callback replaces it. */
static char *job_state_copy(forwarded_job *job) {
  pthread_mutex_lock(&job->lock);
  char *state = job->serialized ? strdup(job->serialized) : NULL;
  pthread_mutex_unlock(&job->lock);
  return state;
}

static OrthancPluginJobStepStatus job_step(void *opaque) {
  forwarded_job *job = opaque;
  char *state = job_state_copy(job);
  wire_message answer;
  int rc = state ? job_forward(job, "job.step", NULL, state, &answer) : -1;
  free(state);
  if (rc != 0) return OrthancPluginJobStepStatus_Failure;
  char result[16] = "";
  json_member_string(answer.meta, "result", result, sizeof(result));
  wire_message_free(&answer);
  if (strcmp(result, "continue") == 0) return OrthancPluginJobStepStatus_Continue;
  if (strcmp(result, "success") == 0) return OrthancPluginJobStepStatus_Success;
  return OrthancPluginJobStepStatus_Failure;
}

static const char *stop_reason(OrthancPluginJobStopReason reason) {
  switch (reason) {
    case OrthancPluginJobStopReason_Success: return "success";
    case OrthancPluginJobStopReason_Paused: return "paused";
    case OrthancPluginJobStopReason_Failure: return "failure";
    default: return "canceled";
  }
}

static OrthancPluginErrorCode job_stop(void *opaque, OrthancPluginJobStopReason reason) {
  forwarded_job *job = opaque;
  char *state = job_state_copy(job);
  wire_message answer;
  int rc = state ? job_forward(job, "job.stop", stop_reason(reason), state, &answer) : -1;
  free(state);
  if (rc == 0) wire_message_free(&answer);
  return rc == 0 ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_Plugin;
}

static OrthancPluginErrorCode job_reset(void *opaque) {
  forwarded_job *job = opaque;
  char *state = job_state_copy(job);
  wire_message answer;
  int rc = state ? job_forward(job, "job.reset", NULL, state, &answer) : -1;
  free(state);
  if (rc == 0) wire_message_free(&answer);
  return rc == 0 ? OrthancPluginErrorCode_Success : OrthancPluginErrorCode_Plugin;
}

static OrthancPluginJob *job_create(forwarded_job *job) {
  OrthancPluginJob *created = OrthancPluginCreateJob(plugin_context(), job, job_finalize, job->type, job_progress,
                                                     job_content, job_serialized, job_step, job_stop, job_reset);
  if (created == NULL) job_finalize(job);
  return created;
}

static int is_forwarded_job_type(const char *type) {
  for (int i = 0; i < g_job_type_count; i++) {
    if (strcmp(g_job_types[i], type) == 0) return 1;
  }
  return 0;
}

/* {"call":"submit-job","type":...,"priority":n} + record: answers {"error":0,"id":...}. */
static void call_submit_job(const wire_message *request, wire_message *answer) {
  char type[MAX_NAME];
  if (json_member_string(request->meta, "type", type, sizeof(type)) != 0 || !is_forwarded_job_type(type)) {
    answer_error(answer, OrthancPluginErrorCode_ParameterOutOfRange);
    return;
  }
  forwarded_job *job = job_new(type);
  if (job == NULL || job_apply_record(job, request) != 0) {
    if (job) job_finalize(job);
    answer_error(answer, OrthancPluginErrorCode_ParameterOutOfRange);
    return;
  }
  OrthancPluginJob *created = job_create(job);
  char *id = created ? OrthancPluginSubmitJob(plugin_context(), created,
                                              (int)json_member_integer(request->meta, "priority", 0))
                     : NULL;
  if (id == NULL) {
    if (created) OrthancPluginFreeJob(plugin_context(), created);
    answer_error(answer, OrthancPluginErrorCode_InternalError);
    return;
  }
  json_buffer meta = {0};
  json_raw(&meta, "{\"error\":0,\"id\":");
  json_quoted(&meta, id);
  json_raw(&meta, "}");
  OrthancPluginFreeString(plugin_context(), id);
  answer->meta = json_text(&meta) ? meta.data : NULL;
  if (answer->meta == NULL) json_free(&meta);
}

static OrthancPluginJob *unserialize_job(const char *type, const char *serialized) {
  if (type == NULL || serialized == NULL || !is_forwarded_job_type(type)) return NULL;
  forwarded_job *job = job_new(type);
  if (job == NULL) return NULL;
  wire_message answer;
  if (job_forward(job, "job.unserialize", NULL, serialized, &answer) != 0) {
    job_finalize(job);
    return NULL;
  }
  wire_message_free(&answer);
  return job_create(job);
}

/* ---- REST routes --------------------------------------------------------------------------- */

static const char *method_name(OrthancPluginHttpMethod method) {
  switch (method) {
    case OrthancPluginHttpMethod_Get: return "GET";
    case OrthancPluginHttpMethod_Post: return "POST";
    case OrthancPluginHttpMethod_Put: return "PUT";
    default: return "DELETE";
  }
}

static void json_pairs(json_buffer *meta, uint32_t count, const char *const *keys, const char *const *values) {
  json_raw(meta, "[");
  for (uint32_t i = 0; i < count; i++) {
    json_raw(meta, i ? ",[" : "[");
    json_quoted(meta, keys[i]);
    json_raw(meta, ",");
    json_quoted(meta, values[i]);
    json_raw(meta, "]");
  }
  json_raw(meta, "]");
}

/* Meta {"method":..,"uri":..,"groups":[..],"get":[[k,v],..]} + the request body. Answer meta:
 * {"status":200,"contentType":..} + body, {"status":n,"allow":..} or {"error":code,"details":..}. */
static OrthancPluginErrorCode rest_callback(OrthancPluginRestOutput *output, const char *url,
                                            const OrthancPluginHttpRequest *request) {
  OrthancPluginContext *context = plugin_context();
  json_buffer meta = {0};
  json_raw(&meta, "{\"method\":");
  json_quoted(&meta, method_name(request->method));
  json_raw(&meta, ",\"uri\":");
  json_quoted(&meta, url);
  json_raw(&meta, ",\"groups\":[");
  for (uint32_t i = 0; i < request->groupsCount; i++) {
    if (i) json_raw(&meta, ",");
    json_quoted(&meta, request->groups[i]);
  }
  json_raw(&meta, "],\"get\":");
  json_pairs(&meta, request->getCount, request->getKeys, request->getValues);
  json_raw(&meta, "}");
  if (json_text(&meta) == NULL) {
    json_free(&meta);
    return OrthancPluginErrorCode_NotEnoughMemory;
  }
  wire_message answer;
  char failure[1024];
  int rc = wire_invoke("rest", meta.data, request->body, request->bodySize, serve_orthanc_request, &answer, failure,
                       sizeof(failure));
  json_free(&meta);
  if (rc != 0) {
    log_message(LOG_ERROR, "%s %s: %s", method_name(request->method), url, failure);
    OrthancPluginSetHttpErrorDetails(context, output, failure, 0);
    return OrthancPluginErrorCode_Plugin;
  }

  OrthancPluginErrorCode result = OrthancPluginErrorCode_Success;
  long long error = json_member_integer(answer.meta, "error", 0);
  long long status = json_member_integer(answer.meta, "status", 200);
  if (error != 0) {
    char details[2048];
    if (json_member_string(answer.meta, "details", details, sizeof(details)) == 0)
      OrthancPluginSetHttpErrorDetails(context, output, details, 0);
    result = (OrthancPluginErrorCode)error;
  } else if (status == 200) {
    char content_type[128] = "application/json";
    json_member_string(answer.meta, "contentType", content_type, sizeof(content_type));
    OrthancPluginAnswerBuffer(context, output, answer.body ? answer.body : "", (uint32_t)answer.body_size,
                              content_type);
  } else if (status == 405) {
    char allow[64] = "";
    json_member_string(answer.meta, "allow", allow, sizeof(allow));
    OrthancPluginSendMethodNotAllowed(context, output, allow);
  } else {
    OrthancPluginSendHttpStatus(context, output, (uint16_t)status, answer.body ? answer.body : "",
                                (uint32_t)answer.body_size);
  }
  wire_message_free(&answer);
  return result;
}

/* ---- Registration -------------------------------------------------------------------------- */

int forward_register(const char *handshake) {
  OrthancPluginContext *context = plugin_context();
  const char *routes = handshake ? json_member(handshake, "restRoutes") : NULL;
  const char *types = handshake ? json_member(handshake, "jobTypes") : NULL;
  char text[MAX_URI];
  for (size_t i = 0; routes != NULL && json_item(routes, i) != NULL; i++) {
    if (json_string_value(json_item(routes, i), text, sizeof(text)) != 0) {
      log_message(LOG_ERROR, "the gateway announced an invalid REST route");
      return -1;
    }
    OrthancPluginRegisterRestCallbackNoLock(context, text, rest_callback);
    log_message(LOG_INFO, "REST route %s forwarded to the gateway", text);
  }
  for (size_t i = 0; types != NULL && json_item(types, i) != NULL; i++) {
    if (g_job_type_count == MAX_JOB_TYPES ||
        json_string_value(json_item(types, i), g_job_types[g_job_type_count], MAX_NAME) != 0) {
      log_message(LOG_ERROR, "the gateway announced an invalid job type");
      return -1;
    }
    g_job_type_count++;
  }
  if (g_job_type_count > 0) OrthancPluginRegisterJobsUnserializer(context, unserialize_job);
  return 0;
}
