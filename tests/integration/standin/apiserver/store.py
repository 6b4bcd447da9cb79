"""In-memory object store with resource versions and a watch event log.

Objects live only in memory: a restart of the stand-in starts empty. Stored
objects are never modified in place. Writers pass a new dict, so readers
may serialize what they got without holding the lock.
"""

import collections
import threading
import time

# Watch events kept for clients that resume from a resourceVersion. Older
# resource versions get "410 Gone", as from a compacted etcd.
EVENT_LOG_LENGTH = 20000


class Event:
    __slots__ = ("resource_version", "type", "group_resource", "namespace",
                 "name", "object", "old_object")

    def __init__(self, resource_version, event_type, group_resource,
                 namespace, name, obj, old_obj):
        self.resource_version = resource_version
        self.type = event_type
        self.group_resource = group_resource
        self.namespace = namespace
        self.name = name
        self.object = obj
        self.old_object = old_obj


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._resource_version = 1000
        self._objects = {}
        self._events = collections.deque(maxlen=EVENT_LOG_LENGTH)
        self._listeners = []

    def add_listener(self, callback):
        """Call callback(event) after every write, with the lock held.

        Callbacks must be quick and must not block: the controllers only
        queue work from them.
        """
        self._listeners.append(callback)

    @property
    def resource_version(self):
        with self.lock:
            return self._resource_version

    def oldest_event_version(self):
        with self.lock:
            if self._events:
                return self._events[0].resource_version
            return self._resource_version

    def get(self, group_resource, namespace, name):
        with self.lock:
            return self._objects.get(group_resource, {}).get(
                (namespace or "", name))

    def list(self, group_resource, namespace=None):
        """Return objects sorted by namespace and name, as etcd keys sort."""
        with self.lock:
            objects = self._objects.get(group_resource, {})
            if namespace is None:
                keys = sorted(objects)
            else:
                keys = sorted(k for k in objects if k[0] == namespace)
            return [objects[k] for k in keys]

    def group_resources(self):
        with self.lock:
            return [gr for gr, objects in self._objects.items() if objects]

    def count(self):
        with self.lock:
            return sum(len(objects) for objects in self._objects.values())

    def next_resource_version(self):
        with self.lock:
            self._resource_version += 1
            return self._resource_version

    def put(self, group_resource, obj):
        """Store obj (a new dict), give it a new resourceVersion, emit an
        ADDED or MODIFIED event and return the stored object."""
        metadata = obj["metadata"]
        key = (metadata.get("namespace", "") or "", metadata["name"])
        with self.lock:
            resource_version = self.next_resource_version()
            metadata["resourceVersion"] = str(resource_version)
            objects = self._objects.setdefault(group_resource, {})
            old = objects.get(key)
            objects[key] = obj
            self._emit(Event(resource_version,
                             "MODIFIED" if old is not None else "ADDED",
                             group_resource, key[0], key[1], obj, old))
            return obj

    def delete(self, group_resource, namespace, name):
        """Remove an object, emit DELETED and return it (None if absent)."""
        with self.lock:
            objects = self._objects.get(group_resource, {})
            old = objects.pop((namespace or "", name), None)
            if old is None:
                return None
            resource_version = self.next_resource_version()
            final = dict(old)
            final["metadata"] = dict(old["metadata"])
            final["metadata"]["resourceVersion"] = str(resource_version)
            self._emit(Event(resource_version, "DELETED", group_resource,
                             namespace or "", name, final, old))
            return final

    def _emit(self, event):
        self._events.append(event)
        for listener in self._listeners:
            listener(event)
        self.changed.notify_all()

    def events_since(self, resource_version):
        """Return the events after resource_version, or None when it is
        older than the log keeps."""
        with self.lock:
            if self._events and resource_version < (
                    self._events[0].resource_version - 1):
                return None
            newer = []
            for event in reversed(self._events):
                if event.resource_version <= resource_version:
                    break
                newer.append(event)
            newer.reverse()
            return newer

    def wait_for_change(self, resource_version, timeout):
        """Block until the store moves past resource_version or timeout
        seconds pass."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self._resource_version <= resource_version:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.changed.wait(remaining)
