/**
 * Geohash encoding, for the one way a location may ever leave the anonymiser: a truncated cell,
 * never coordinates. A cell is named by its first `precision` characters; 4 characters is about
 * 39 km × 20 km, 5 about 4.9 km × 4.9 km.
 */
const BASE32 = '0123456789bcdefghjkmnpqrstuvwxyz'

export function geohash(lat: number, lng: number, precision: number): string {
  let latRange: [number, number] = [-90, 90]
  let lngRange: [number, number] = [-180, 180]
  let hash = ''
  let bits = 0
  let value = 0
  let evenBit = true
  while (hash.length < precision) {
    const range = evenBit ? lngRange : latRange
    const coordinate = evenBit ? lng : lat
    const mid = (range[0] + range[1]) / 2
    value = value * 2 + (coordinate >= mid ? 1 : 0)
    if (evenBit) lngRange = coordinate >= mid ? [mid, range[1]] : [range[0], mid]
    else latRange = coordinate >= mid ? [mid, range[1]] : [range[0], mid]
    evenBit = !evenBit
    if (++bits === 5) {
      hash += BASE32[value]
      bits = 0
      value = 0
    }
  }
  return hash
}

/** The centre of a geohash cell: what an individual location record carries instead of a position. */
export function geohashCentre(hash: string): { lat: number; lng: number } {
  let latRange: [number, number] = [-90, 90]
  let lngRange: [number, number] = [-180, 180]
  let evenBit = true
  for (const char of hash) {
    const value = BASE32.indexOf(char)
    if (value < 0) throw new Error(`not a geohash: ${hash}`)
    for (let bit = 4; bit >= 0; bit--) {
      const on = ((value >> bit) & 1) === 1
      if (evenBit) {
        const mid = (lngRange[0] + lngRange[1]) / 2
        lngRange = on ? [mid, lngRange[1]] : [lngRange[0], mid]
      } else {
        const mid = (latRange[0] + latRange[1]) / 2
        latRange = on ? [mid, latRange[1]] : [latRange[0], mid]
      }
      evenBit = !evenBit
    }
  }
  return { lat: (latRange[0] + latRange[1]) / 2, lng: (lngRange[0] + lngRange[1]) / 2 }
}

const EARTH_RADIUS_M = 6_371_008.8

/** Great-circle distance in metres (haversine). */
export function distanceMetres(a: { lat: number; lng: number }, b: { lat: number; lng: number }): number {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLng = (b.lng - a.lng) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLng / 2) ** 2
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)))
}
