package sqlstore

// CachedVersion reports the version the read cache holds for a resource,
// so tests can see that reads are served from it.
func CachedVersion(s *Store, typ, id string) (int64, bool) {
	if s.cache == nil {
		return 0, false
	}
	v, _, ok := s.cache.get(cacheKey{typ, id})
	if !ok {
		return 0, false
	}
	return v.version, true
}

// CacheOn reports whether the read cache serves reads.
func CacheOn(s *Store) bool { return s.cache != nil && s.cache.on.Load() }
