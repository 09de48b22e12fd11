package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// client speaks a node's JSON RPC over HTTP GET.
type client struct {
	base string
	http *http.Client
}

func newClient(addr string) *client {
	return &client{base: "http://" + addr, http: &http.Client{Timeout: 5 * time.Second}}
}

func (c *client) get(ctx context.Context, path string, result any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(env.Error) > 0 && string(env.Error) != "null" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Result, result)
}

func (c *client) height(ctx context.Context) (int64, error) {
	var r struct {
		SyncInfo struct {
			Height string `json:"latest_block_height"`
		} `json:"sync_info"`
	}
	if err := c.get(ctx, "/status", &r); err != nil {
		return 0, err
	}
	return strconv.ParseInt(r.SyncInfo.Height, 10, 64)
}

// block is what the report needs of a committed block.
type block struct {
	time time.Time
	txs  [][]byte
}

func (c *client) block(ctx context.Context, h int64) (block, error) {
	var r struct {
		Block struct {
			Header struct {
				Time time.Time `json:"time"`
			} `json:"header"`
			Data struct {
				Txs []string `json:"txs"`
			} `json:"data"`
		} `json:"block"`
	}
	if err := c.get(ctx, "/block?height="+strconv.FormatInt(h, 10), &r); err != nil {
		return block{}, err
	}
	b := block{time: r.Block.Header.Time}
	for _, t := range r.Block.Data.Txs {
		raw, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return block{}, fmt.Errorf("block %d: %w", h, err)
		}
		b.txs = append(b.txs, raw)
	}
	return b, nil
}

func (c *client) peers(ctx context.Context) ([]string, error) {
	var r struct {
		Peers []struct {
			NodeInfo struct {
				ID string `json:"id"`
			} `json:"node_info"`
		} `json:"peers"`
	}
	if err := c.get(ctx, "/net_info", &r); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(r.Peers))
	for _, p := range r.Peers {
		ids = append(ids, p.NodeInfo.ID)
	}
	return ids, nil
}

func (c *client) broadcastAsync(ctx context.Context, tx []byte) error {
	var r json.RawMessage
	return c.get(ctx, "/broadcast_tx_async?tx=0x"+hex.EncodeToString(tx), &r)
}
