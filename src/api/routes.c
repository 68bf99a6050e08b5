/*
 * routes.c - the route table: every resource the hub serves, in one place.
 * The router (http/server.c) matches patterns segment by segment; a path
 * that matches with another method answers 405 with Allow.
 */
#include "api/api.h"

#define B API_BASE

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
    {HTTP_GET, B "/temporal/entities/{id}", api_temporal_entity_get},
    {HTTP_GET, "/version", api_version},
    {HTTP_GET, "/health", api_health},
};

const size_t api_n_routes = sizeof(api_routes) / sizeof(api_routes[0]);
