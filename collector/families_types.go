package collector

import (
	"sort"

	dto "github.com/prometheus/client_model/go"
)

// The families of what only some probe types report: transaction steps,
// DNS responses, ICMP packets, gRPC health and the TLS connection. A probe
// has series in them only when its last result carried the figures.
var (
	familyStepSuccess = probeFamily{"probe_step_success",
		"Whether each step of the last run of a transaction succeeded (1) or failed or was not reached (0).",
		[]string{"service", "probe", "step"}, dto.MetricType_GAUGE}
	familyStepDuration = probeFamily{"probe_step_duration_seconds",
		"Wall time of each step the last run of a transaction reached.",
		[]string{"service", "probe", "step"}, dto.MetricType_GAUGE}
	familyStepFailures = probeFamily{"probe_step_failures_total",
		"Failed transaction steps by step and reason. A series appears at its first failure.",
		[]string{"service", "probe", "step", "reason"}, dto.MetricType_COUNTER}
	familyDNSRcode = probeFamily{"probe_dns_rcode",
		"Response code of the last DNS response (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...).",
		baseLabels, dto.MetricType_GAUGE}
	familyDNSRecords = probeFamily{"probe_dns_records",
		"Number of records in each section of the last DNS response.",
		[]string{"service", "probe", "section"}, dto.MetricType_GAUGE}
	familyICMPSent = probeFamily{"probe_icmp_packets_sent_total",
		"ICMP echo requests sent since the daemon started.", baseLabels, dto.MetricType_COUNTER}
	familyICMPReceived = probeFamily{"probe_icmp_packets_received_total",
		"ICMP echo replies received since the daemon started.", baseLabels, dto.MetricType_COUNTER}
	familyICMPLoss = probeFamily{"probe_icmp_packet_loss_ratio",
		"Share of the echo requests of the last run that got no reply.", baseLabels, dto.MetricType_GAUGE}
	familyICMPRTT = probeFamily{"probe_icmp_rtt_seconds",
		"Round trip time of the replies of the last run: min, mean and max.",
		[]string{"service", "probe", "stat"}, dto.MetricType_GAUGE}
	familyGRPCHealth = probeFamily{"probe_grpc_healthcheck_response",
		"Serving status of the last gRPC health check response: 1 for the status received, 0 for the others.",
		[]string{"service", "probe", "serving_status"}, dto.MetricType_GAUGE}
	familyTLSVersion = probeFamily{"probe_tls_version_info",
		"TLS version of the last TLS connection, as a label; always 1.",
		[]string{"service", "probe", "version"}, dto.MetricType_GAUGE}
	familyTLSCipher = probeFamily{"probe_tls_cipher_info",
		"Cipher suite of the last TLS connection, as a label; always 1.",
		[]string{"service", "probe", "cipher"}, dto.MetricType_GAUGE}

	typeFamilies = []probeFamily{familyStepSuccess, familyStepDuration, familyStepFailures,
		familyDNSRcode, familyDNSRecords, familyICMPSent, familyICMPReceived, familyICMPLoss, familyICMPRTT,
		familyGRPCHealth, familyTLSVersion, familyTLSCipher}
)

// Fixed label values of the families above.
var (
	dnsSectionPairs = FixedLabelPairs("section", []string{"additional", "answer", "authority"})
	rttStatPairs    = FixedLabelPairs("stat", []string{"max", "mean", "min"})
	// HealthStatuses are grpc.health.v1's serving statuses, sorted.
	healthStatuses    = []string{"NOT_SERVING", "SERVICE_UNKNOWN", "SERVING", "UNKNOWN"}
	healthStatusPairs = FixedLabelPairs("serving_status", healthStatuses)
)

// stepFailure counts the failures of one step for one reason.
type stepFailure struct {
	step   string
	reason int // index in reasonIndex
	n      uint64
}

// countStepFailures returns counts with the failed steps of steps added.
// counts is never modified: a snapshot may share it, so a change makes a
// new slice. Counts of steps the transaction no longer has are dropped, so
// a renamed step's series goes away with it.
func countStepFailures(counts []stepFailure, steps []StepResult) []stepFailure {
	var next []stepFailure
	for _, c := range counts {
		if hasStep(steps, c.step) {
			next = append(next, c)
		}
	}
	changed := len(next) != len(counts)
	for _, step := range steps {
		if !step.Ran || step.Success {
			continue
		}
		if !changed {
			next = append([]stepFailure(nil), next...)
			changed = true
		}
		reason := indexOfReason(step.Reason)
		found := false
		for i := range next {
			if next[i].step == step.Name && next[i].reason == reason {
				next[i].n++
				found = true
			}
		}
		if !found {
			next = append(next, stepFailure{step: step.Name, reason: reason, n: 1})
		}
	}
	if !changed {
		return counts
	}
	sort.Slice(next, func(i, j int) bool {
		// The order of the series: reason sorts before step.
		if next[i].reason != next[j].reason {
			return reasonIndex[next[i].reason] < reasonIndex[next[j].reason]
		}
		return next[i].step < next[j].step
	})
	return next
}

func hasStep(steps []StepResult, name string) bool {
	for _, step := range steps {
		if step.Name == name {
			return true
		}
	}
	return false
}

// typeSteps returns the steps of eachFamily for the families above.
func (b *familyBuilder) typeSteps() []func() *dto.MetricFamily {
	return []func() *dto.MetricFamily{
		b.steps(familyStepSuccess, func(s StepResult) (float64, bool) { return boolToFloat(s.Ran && s.Success), true }),
		b.steps(familyStepDuration, func(s StepResult) (float64, bool) { return s.Duration.Seconds(), s.Ran }),
		b.stepFailures,
		b.lastRun(familyDNSRcode, func(p *probeCopy) (float64, bool) {
			if dns := p.figures.last.DNS; dns != nil {
				return float64(dns.Rcode), true
			}
			return 0, false
		}),
		b.dnsRecords,
		b.packetCounter(familyICMPSent, func(f *probeFigures) uint64 { return f.packetsSent }),
		b.packetCounter(familyICMPReceived, func(f *probeFigures) uint64 { return f.packetsReceived }),
		b.lastRun(familyICMPLoss, func(p *probeCopy) (float64, bool) {
			packets := p.figures.last.Packets
			if packets == nil || packets.Sent == 0 {
				return 0, false
			}
			return float64(packets.Sent-packets.Received) / float64(packets.Sent), true
		}),
		b.rtt,
		b.grpcHealth,
		b.tlsInfo(familyTLSVersion, func(t *TLSState) string { return t.Version }),
		b.tlsInfo(familyTLSCipher, func(t *TLSState) string { return t.CipherSuite }),
	}
}

// steps builds a family with one series per step of the last run of each
// transaction probe, where value reports ok.
func (b *familyBuilder) steps(family probeFamily, value func(StepResult) (float64, bool)) func() *dto.MetricFamily {
	return func() *dto.MetricFamily {
		s := b.newSlab(family, b.count(func(p *probeCopy) int { return len(p.figures.last.Steps) }))
		for i := range b.probes {
			p := &b.probes[i]
			for _, step := range sortedSteps(p.figures.last.Steps) {
				if v, ok := value(step); ok {
					s.Add(v, p.labels.probe, p.labels.service, LabelPair("step", step.Name))
				}
			}
		}
		return s.Family()
	}
}

// sortedSteps returns steps ordered by name, for sorted series.
func sortedSteps(steps []StepResult) []StepResult {
	if len(steps) < 2 {
		return steps
	}
	out := append([]StepResult(nil), steps...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (b *familyBuilder) stepFailures() *dto.MetricFamily {
	s := b.newSlab(familyStepFailures, b.count(func(p *probeCopy) int { return len(p.figures.stepFailures) }))
	// Labels sort probe, reason, service, step: within a probe name,
	// order by reason, then service, then step.
	type entry struct {
		p *probeCopy
		c stepFailure
	}
	var entries []entry
	b.eachProbeName(func(group []probeCopy) {
		entries = entries[:0]
		for i := range group {
			for _, c := range group[i].figures.stepFailures {
				entries = append(entries, entry{&group[i], c})
			}
		}
		sort.SliceStable(entries, func(i, j int) bool {
			// Services are in order already, and steps within a service.
			return reasonIndex[entries[i].c.reason] < reasonIndex[entries[j].c.reason]
		})
		for _, e := range entries {
			s.Add(float64(e.c.n), e.p.labels.probe, reasonPairs[e.c.reason], e.p.labels.service, LabelPair("step", e.c.step))
		}
	})
	return s.Family()
}

func (b *familyBuilder) dnsRecords() *dto.MetricFamily {
	s := b.newSlab(familyDNSRecords, b.count(func(p *probeCopy) int { return 3 * boolToInt(p.figures.last.DNS != nil) }))
	// The section label sorts between probe and service.
	b.eachProbeName(func(group []probeCopy) {
		for j := range dnsSectionPairs {
			for i := range group {
				p := &group[i]
				if dns := p.figures.last.DNS; dns != nil {
					n := [...]int{dns.Additional, dns.Answer, dns.Authority}[j]
					s.Add(float64(n), p.labels.probe, dnsSectionPairs[j], p.labels.service)
				}
			}
		}
	})
	return s.Family()
}

// packetCounter builds a counter family over the probes that sent packets.
func (b *familyBuilder) packetCounter(family probeFamily, value func(*probeFigures) uint64) func() *dto.MetricFamily {
	return func() *dto.MetricFamily {
		s := b.newSlab(family, b.count(func(p *probeCopy) int { return boolToInt(p.info.Type == "icmp") }))
		for i := range b.probes {
			p := &b.probes[i]
			if p.info.Type == "icmp" {
				s.Add(float64(value(&p.figures)), p.labels.probe, p.labels.service)
			}
		}
		return s.Family()
	}
}

func (b *familyBuilder) rtt() *dto.MetricFamily {
	s := b.newSlab(familyICMPRTT, b.count(func(p *probeCopy) int { return 3 * boolToInt(p.figures.last.Packets != nil) }))
	for i := range b.probes {
		p := &b.probes[i]
		packets := p.figures.last.Packets
		if packets == nil || packets.Received == 0 {
			continue
		}
		for j, d := range []float64{packets.RTTMax.Seconds(), packets.RTTMean.Seconds(), packets.RTTMin.Seconds()} {
			s.Add(d, p.labels.probe, p.labels.service, rttStatPairs[j])
		}
	}
	return s.Family()
}

func (b *familyBuilder) grpcHealth() *dto.MetricFamily {
	s := b.newSlab(familyGRPCHealth, b.count(func(p *probeCopy) int {
		return len(healthStatuses) * boolToInt(p.figures.last.HealthStatus != "")
	}))
	for i := range b.probes {
		p := &b.probes[i]
		status := p.figures.last.HealthStatus
		if status == "" {
			continue
		}
		for j, known := range healthStatuses {
			s.Add(boolToFloat(status == known), p.labels.probe, p.labels.service, healthStatusPairs[j])
		}
	}
	return s.Family()
}

// tlsInfo builds an info family labelled with label of the TLS state.
func (b *familyBuilder) tlsInfo(family probeFamily, label func(*TLSState) string) func() *dto.MetricFamily {
	name := family.labels[2]
	return func() *dto.MetricFamily {
		s := b.newSlab(family, b.count(func(p *probeCopy) int { return boolToInt(p.figures.last.TLS != nil) }))
		var withTLS []*probeCopy
		for i := range b.probes {
			if b.probes[i].figures.last.TLS != nil {
				withTLS = append(withTLS, &b.probes[i])
			}
		}
		if name < "probe" {
			// The label sorts first: series are ordered by its value.
			sort.SliceStable(withTLS, func(i, j int) bool {
				return label(withTLS[i].figures.last.TLS) < label(withTLS[j].figures.last.TLS)
			})
		}
		for _, p := range withTLS {
			pair := LabelPair(name, label(p.figures.last.TLS))
			if name < "probe" {
				s.Add(1, pair, p.labels.probe, p.labels.service)
			} else {
				s.Add(1, p.labels.probe, p.labels.service, pair)
			}
		}
		return s.Family()
	}
}

// count returns the sum of series over the probes: the capacity a family's
// slab needs.
func (b *familyBuilder) count(series func(*probeCopy) int) int {
	total := 0
	for i := range b.probes {
		total += series(&b.probes[i])
	}
	return total
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
