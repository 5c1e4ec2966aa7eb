#!/bin/sh
# Creates TaskFlow's Kafka topics once, before any sidecar subscribes. Redpanda Cloud does not create topics
# on first use (and the local broker is configured the same way), so a missing topic fails loudly here
# instead of silently later. Safe to run again: topics that exist are left as they are.
#
# rpk reads where and how to connect from RPK_* variables, so one script serves every broker:
#   local Redpanda:  RPK_BROKERS=redpanda:9092
#   Redpanda Cloud:  RPK_BROKERS=<bootstrap URL> RPK_TLS_ENABLED=true RPK_SASL_MECHANISM=SCRAM-SHA-256
#                    RPK_USER=<user> RPK_PASS=<password>
# Used by docker-compose.yml (service "topics") and the Helm chart (the topics hook Job).
set -eu

# Partitions cap how many replicas of one app share a topic's work (one consumer group per app id).
# Events are keyed by user id, so one user's events stay in order whatever the count. Dead-letter topics
# are only read by people inspecting or replaying events: one partition is plenty. Replication is the
# cluster's default (1 on a single dev node, 3 on Redpanda Cloud).
TOPICS="task-events:3 notifications:3 task-events-dlq:1 notifications-dlq:1"

# Fails (and so stops the script) when the broker is unreachable or the credentials are wrong.
existing=$(rpk topic list)

for entry in $TOPICS; do
    topic=${entry%%:*}
    partitions=${entry#*:}
    if printf '%s\n' "$existing" | awk 'NR > 1 { print $1 }' | grep -qx "$topic"; then
        echo "topic $topic exists"
    else
        rpk topic create "$topic" --partitions "$partitions"
    fi
done
