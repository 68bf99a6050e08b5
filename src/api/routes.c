/*
 * routes.c - the route table: every resource the hub serves, in one place.
 * The router (http/server.c) matches patterns segment by segment; a path
 * that matches with another method answers 405 with Allow.
 */
#include "api/api.h"

#define B API_BASE

/* most routes leave flags out (0) */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

const struct http_route api_routes[] = {
    {HTTP_POST, B "/entities", api_entity_create},
    {HTTP_GET, B "/entities", api_entities_query},
    {HTTP_GET, B "/entities/{id}", api_entity_get},
    {HTTP_DELETE, B "/entities/{id}", api_entity_delete},
    {HTTP_PUT, B "/entities/{id}", api_entity_replace},
    {HTTP_PATCH, B "/entities/{id}", api_entity_merge},
    {HTTP_POST, B "/entities/{id}/attrs", api_attrs_append},
    {HTTP_PATCH, B "/entities/{id}/attrs", api_attrs_update},
    {HTTP_PATCH, B "/entities/{id}/attrs/{attrId}", api_attr_patch},
    {HTTP_PUT, B "/entities/{id}/attrs/{attrId}", api_attr_replace},
    {HTTP_DELETE, B "/entities/{id}/attrs/{attrId}", api_attr_delete},
    {HTTP_POST, B "/entityOperations/create", api_batch_create},
    {HTTP_POST, B "/entityOperations/upsert", api_batch_upsert},
    {HTTP_POST, B "/entityOperations/update", api_batch_update},
    {HTTP_POST, B "/entityOperations/delete", api_batch_delete},
    {HTTP_POST, B "/entityOperations/merge", api_batch_merge},
    {HTTP_POST, B "/entityOperations/query", api_batch_query},
    {HTTP_GET, B "/types", api_types_list},
    {HTTP_GET, B "/types/{type}", api_type_get},
    {HTTP_GET, B "/attributes", api_attributes_list},
    {HTTP_GET, B "/attributes/{attrId}", api_attribute_get},
    {HTTP_GET, B "/jsonldContexts", api_contexts_list},
    {HTTP_POST, B "/jsonldContexts", api_contexts_create},
    {HTTP_GET, B "/jsonldContexts/{id}", api_context_get},
    {HTTP_DELETE, B "/jsonldContexts/{id}", api_context_delete},
    {HTTP_POST, B "/subscriptions", api_subscription_create},
    {HTTP_GET, B "/subscriptions", api_subscriptions_list},
    {HTTP_GET, B "/subscriptions/{id}", api_subscription_get},
    {HTTP_PATCH, B "/subscriptions/{id}", api_subscription_patch},
    {HTTP_DELETE, B "/subscriptions/{id}", api_subscription_delete},
    {HTTP_GET, B "/subscriptions/{id}/stream", api_subscription_stream, HTTP_ROUTE_STREAM},
    {HTTP_GET, B "/temporal/entities/{id}", api_temporal_entity_get},
    {HTTP_GET, B "/temporal/entities", api_temporal_query},
    {HTTP_POST, B "/temporal/entities", api_temporal_create},
    {HTTP_DELETE, B "/temporal/entities/{id}", api_temporal_entity_delete},
    {HTTP_POST, B "/temporal/entities/{id}/attrs", api_temporal_attrs_append},
    {HTTP_DELETE, B "/temporal/entities/{id}/attrs/{attrId}", api_temporal_attr_delete},
    {HTTP_PATCH, B "/temporal/entities/{id}/attrs/{attrId}/{instanceId}",
     api_temporal_instance_patch},
    {HTTP_DELETE, B "/temporal/entities/{id}/attrs/{attrId}/{instanceId}",
     api_temporal_instance_delete},
    {HTTP_POST, B "/temporal/entityOperations/query", api_temporal_batch_query},
#define A "/pilotlight/v1"
    {HTTP_GET, A "/device-profiles", api_admin_profiles_list},
    {HTTP_POST, A "/device-profiles", api_admin_profile_create},
    {HTTP_GET, A "/device-profiles/{id}", api_admin_profile_get},
    {HTTP_PUT, A "/device-profiles/{id}", api_admin_profile_put},
    {HTTP_DELETE, A "/device-profiles/{id}", api_admin_profile_delete},
    {HTTP_GET, A "/devices", api_admin_devices_list},
    {HTTP_POST, A "/devices", api_admin_device_create, HTTP_ROUTE_ANY_BODY},
    {HTTP_GET, A "/devices/{devEui}", api_admin_device_get},
    {HTTP_PUT, A "/devices/{devEui}", api_admin_device_put},
    {HTTP_DELETE, A "/devices/{devEui}", api_admin_device_delete},
    {HTTP_GET, A "/quarantine", api_admin_quarantine_list},
    {HTTP_DELETE, A "/quarantine/{devEui}", api_admin_quarantine_delete},
    {HTTP_POST, A "/quarantine/{devEui}/provision", api_admin_quarantine_provision},
    {HTTP_POST | HTTP_PUT, A "/ingest/secret", api_admin_secret_set},
    {HTTP_GET, A "/ingest/autoprovision", api_admin_autoprov_list},
    {HTTP_PUT, A "/ingest/autoprovision/{application}", api_admin_autoprov_put},
    {HTTP_DELETE, A "/ingest/autoprovision/{application}", api_admin_autoprov_delete},
    {HTTP_GET, A "/ingest/stats", api_admin_ingest_stats},
    {HTTP_GET, A "/store/stats", api_admin_store_stats},
    {HTTP_POST, A "/ingest/chirpstack", api_ingest_chirpstack, HTTP_ROUTE_ANY_BODY},
    {HTTP_POST, A "/ingest/tts", api_ingest_tts, HTTP_ROUTE_ANY_BODY},
    {HTTP_POST, A "/ingest/tts/{event}", api_ingest_tts, HTTP_ROUTE_ANY_BODY},
    {HTTP_GET, "/version", api_version},
    {HTTP_GET, "/health", api_health},
};

const size_t api_n_routes = sizeof(api_routes) / sizeof(api_routes[0]);
