// Command tarread prints what Go's archive/tar reads from tar files, for Seawall's differential
// test of its own tar reader (tests/unit/scan/test_tar_go.py).
//
// For each file named on the command line it reads the archive as a container runtime does:
// Next, then every byte of the entry through Read. It prints one JSON array, an object per file:
// the entries read in full (names as hex, since tar names need not be UTF-8; the SHA-256 of the
// bytes read) and the error that ended the archive, or null for a clean end. Standard library
// only, so it builds offline.
package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
)

type entry struct {
	Name     string `json:"name"`
	Linkname string `json:"linkname"`
	Typeflag int    `json:"typeflag"`
	Size     int64  `json:"size"`
	Mode     int64  `json:"mode"`
	Read     int64  `json:"read"`
	SHA256   string `json:"sha256"`
}

type archive struct {
	Entries []entry `json:"entries"`
	Error   *string `json:"error"`
}

func read(path string) archive {
	result := archive{Entries: []entry{}}
	fail := func(err error) archive {
		message := err.Error()
		result.Error = &message
		return result
	}
	file, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer file.Close()
	// Hide the file's Seek: a runtime reads a decompressing stream, which cannot seek.
	reader := tar.NewReader(struct{ io.Reader }{bufio.NewReader(file)})
	for {
		header, err := reader.Next()
		if err == io.EOF {
			return result
		}
		if err != nil {
			return fail(err)
		}
		digest := sha256.New()
		n, err := io.Copy(digest, reader)
		if err != nil {
			return fail(err)
		}
		result.Entries = append(result.Entries, entry{
			Name:     hex.EncodeToString([]byte(header.Name)),
			Linkname: hex.EncodeToString([]byte(header.Linkname)),
			Typeflag: int(header.Typeflag),
			Size:     header.Size,
			Mode:     header.Mode,
			Read:     n,
			SHA256:   hex.EncodeToString(digest.Sum(nil)),
		})
	}
}

func main() {
	results := make([]archive, 0, len(os.Args)-1)
	for _, path := range os.Args[1:] {
		results = append(results, read(path))
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(1)
	}
}
