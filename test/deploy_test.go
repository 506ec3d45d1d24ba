package test

// Tests of deploy/: the Kubernetes manifests, the PrometheusRule generated
// from the rule files, the systemd unit and the Dockerfile. They check what
// a mistake there would break at deploy time, with the built binary where it
// can judge (flags, configuration) and with systemd-analyze and kubectl when
// they are installed.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const kubernetesDir = "../deploy/kubernetes"

// manifest is one YAML document of deploy/kubernetes.
type manifest struct {
	file string
	kind string
	name string
	raw  []byte // the document alone, re-encoded, to decode into a typed struct
}

// readManifests decodes every document of every *.yaml in deploy/kubernetes
// but kustomization.yaml, requiring apiVersion, kind and metadata.name.
func readManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []manifest
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				if i == 0 {
					t.Errorf("%s: no YAML document", f)
				}
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if doc == nil { // an empty document between two ---
				continue
			}
			apiVersion, _ := doc["apiVersion"].(string)
			kind, _ := doc["kind"].(string)
			meta, _ := doc["metadata"].(map[string]any)
			name, _ := meta["name"].(string)
			if apiVersion == "" || kind == "" || name == "" {
				t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name (got %q, %q, %q)", f, i, apiVersion, kind, name)
				continue
			}
			raw, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, manifest{file: filepath.Base(f), kind: kind, name: name, raw: raw})
		}
	}
	return out
}

// only returns the one manifest of kind, decoded into v.
func only(t *testing.T, manifests []manifest, kind string, v any) manifest {
	t.Helper()
	var found []manifest
	for _, m := range manifests {
		if m.kind == kind {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s in deploy/kubernetes, found %d", kind, len(found))
	}
	dec := yaml.NewDecoder(bytes.NewReader(found[0].raw))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s %s: %v", kind, found[0].name, err)
	}
	return found[0]
}

// TestDeployKubernetesManifests: the directory holds exactly the five
// objects, each in the file the kustomization lists, and kustomize (when
// kubectl is installed) builds them.
func TestDeployKubernetesManifests(t *testing.T) {
	manifests := readManifests(t)
	var kinds []string
	files := map[string]bool{}
	for _, m := range manifests {
		kinds = append(kinds, m.kind)
		files[m.file] = true
	}
	slices.Sort(kinds)
	if want := []string{"ConfigMap", "PrometheusRule", "Service", "ServiceMonitor", "StatefulSet"}; !slices.Equal(kinds, want) {
		t.Errorf("kinds: want %v, got %v", want, kinds)
	}

	var k struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Resources  []string `yaml:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(kubernetesDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: apiVersion %q kind %q", k.APIVersion, k.Kind)
	}
	listed := slices.Sorted(slices.Values(k.Resources))
	present := mapKeys(files)
	if !slices.Equal(listed, present) {
		t.Errorf("kustomization.yaml resources %v, but the manifests are %v", listed, present)
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Log("kubectl not found: not building the kustomization")
		return
	}
	out, err := exec.Command(kubectl, "kustomize", kubernetesDir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", kubernetesDir, err, stderrOf(err))
	}
	if n := strings.Count("\n"+string(out), "\n---\n") + 1; n != len(manifests) {
		t.Errorf("kubectl kustomize built %d objects, want %d:\n%s", n, len(manifests), out)
	}
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe   *probe `yaml:"startupProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type statefulSet struct {
	Spec struct {
		ServiceName string `yaml:"serviceName"`
		Replicas    *int   `yaml:"replicas"`
		Selector    struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot   *bool  `yaml:"runAsNonRoot"`
					RunAsUser      *int64 `yaml:"runAsUser"`
					FSGroup        *int64 `yaml:"fsGroup"`
					SeccompProfile struct {
						Type string `yaml:"type"`
					} `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				AccessModes []string `yaml:"accessModes"`
				Resources   struct {
					Requests map[string]string `yaml:"requests"`
				} `yaml:"resources"`
			} `yaml:"spec"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

// flagValues maps --name=value arguments to their values.
func flagValues(t *testing.T, args []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Errorf("argument %q is not --name=value", a)
			continue
		}
		m[name] = value
	}
	return m
}

// TestDeployKubernetesStatefulSet: one replica on its own volume, probes on
// the daemon's health endpoints, the restricted security profile, and the
// flags pointing at the mounted configuration and volume.
func TestDeployKubernetesStatefulSet(t *testing.T) {
	manifests := readManifests(t)
	var sts statefulSet
	only(t, manifests, "StatefulSet", &sts)
	var svc service
	svcManifest := only(t, manifests, "Service", &svc)
	spec := sts.Spec
	pod := spec.Template.Spec

	if spec.Replicas == nil {
		t.Error("replicas: want exactly 1 (the state is one locked file), got none (which is 1, but say it)")
	} else if *spec.Replicas != 1 {
		t.Errorf("replicas: want exactly 1 (the state is one locked file), got %d", *spec.Replicas)
	}
	if spec.ServiceName != svcManifest.name {
		t.Errorf("serviceName %q, but the Service is %q", spec.ServiceName, svcManifest.name)
	}
	if len(spec.Selector.MatchLabels) == 0 || !subset(spec.Selector.MatchLabels, spec.Template.Metadata.Labels) {
		t.Errorf("selector %v does not select the pod labels %v", spec.Selector.MatchLabels, spec.Template.Metadata.Labels)
	}
	psc := pod.SecurityContext
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65534 ||
		psc.FSGroup == nil || *psc.FSGroup != 65534 || psc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext: want runAsNonRoot, runAsUser 65534, fsGroup 65534, seccomp RuntimeDefault; got %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]

	if len(c.Ports) != 1 || c.Ports[0].Name != "http-metrics" || c.Ports[0].ContainerPort != 10089 {
		t.Errorf("ports: want http-metrics 10089, got %+v", c.Ports)
	}
	for _, p := range []struct {
		name  string
		probe *probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/-/healthy"},
		{"livenessProbe", c.LivenessProbe, "/-/healthy"},
		{"readinessProbe", c.ReadinessProbe, "/-/ready"},
	} {
		if p.probe == nil {
			t.Errorf("%s missing", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || (p.probe.HTTPGet.Port != "http-metrics" && p.probe.HTTPGet.Port != 10089) {
			t.Errorf("%s: want GET %s on http-metrics, got %+v", p.name, p.path, p.probe.HTTPGet)
		}
	}

	sc := c.SecurityContext
	for _, check := range []struct {
		what string
		ok   bool
	}{
		{"runAsNonRoot: true", sc.RunAsNonRoot != nil && *sc.RunAsNonRoot},
		{"runAsUser: 65534", sc.RunAsUser != nil && *sc.RunAsUser == 65534},
		{"readOnlyRootFilesystem: true", sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem},
		{"allowPrivilegeEscalation: false", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation},
		{"capabilities.drop: [ALL]", slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) && len(sc.Capabilities.Add) == 0},
		{"seccompProfile: RuntimeDefault", sc.SeccompProfile.Type == "RuntimeDefault"},
	} {
		if !check.ok {
			t.Errorf("container securityContext: want %s; got %+v", check.what, sc)
		}
	}

	for _, res := range []string{"cpu", "memory"} {
		req, errReq := quantity(c.Resources.Requests[res])
		lim, errLim := quantity(c.Resources.Limits[res])
		if errReq != nil || errLim != nil {
			t.Errorf("resources.%s: want request and limit, got %q (%v) and %q (%v)", res, c.Resources.Requests[res], errReq, c.Resources.Limits[res], errLim)
			continue
		}
		if req <= 0 || req > lim {
			t.Errorf("resources.%s: request %q must be above 0 and at most the limit %q", res, c.Resources.Requests[res], c.Resources.Limits[res])
		}
	}

	flags := flagValues(t, c.Args)
	mounts := map[string]string{} // volume name -> mount path
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
		if m.SubPath != "" {
			// A subPath mount is a copy the kubelet never refreshes: an edited
			// ConfigMap would never reach the daemon.
			t.Errorf("volume mount %s uses subPath %q", m.Name, m.SubPath)
		}
	}
	if len(spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("want one volumeClaimTemplate, got %d", len(spec.VolumeClaimTemplates))
	}
	claim := spec.VolumeClaimTemplates[0]
	if got := mounts[claim.Metadata.Name]; got == "" || got != flags["storage.path"] {
		t.Errorf("--storage.path=%q, but the claim %q is mounted at %q", flags["storage.path"], claim.Metadata.Name, got)
	}
	if !slices.Equal(claim.Spec.AccessModes, []string{"ReadWriteOnce"}) {
		t.Errorf("claim access modes: want [ReadWriteOnce], got %v", claim.Spec.AccessModes)
	}
	if size, err := quantity(claim.Spec.Resources.Requests["storage"]); err != nil || size < 1<<20 {
		t.Errorf("claim storage request %q: want a size of at least 1Mi (%v)", claim.Spec.Resources.Requests["storage"], err)
	}

	var cm configMap
	cmManifest := only(t, manifests, "ConfigMap", &cm)
	var configVolume string
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cmManifest.name {
			configVolume = v.Name
		}
	}
	if configVolume == "" {
		t.Fatalf("no volume from the ConfigMap %q", cmManifest.name)
	}
	dir, key := path.Split(flags["config.file"])
	if mounts[configVolume] == "" || path.Clean(dir) != mounts[configVolume] {
		t.Errorf("--config.file=%q is not in the ConfigMap's mount %q", flags["config.file"], mounts[configVolume])
	}
	if _, ok := cm.Data[key]; !ok {
		t.Errorf("--config.file=%q names key %q, which the ConfigMap lacks (keys: %v)", flags["config.file"], key, mapKeys(cm.Data))
	}

	// The arguments as a whole must be accepted by the daemon: run them with
	// --config.check (which starts nothing), the paths moved to the test's
	// directory.
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, key)
	writeFile(t, cfg, cm.Data[key])
	args := []string{"--config.check"}
	for _, a := range c.Args {
		switch {
		case strings.HasPrefix(a, "--config.file="):
			a = "--config.file=" + cfg
		case strings.HasPrefix(a, "--storage.path="):
			a = "--storage.path=" + filepath.Join(tmp, "data")
		}
		args = append(args, a)
	}
	if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
		t.Errorf("reliabilityd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

type service struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type configMap struct {
	Data map[string]string `yaml:"data"`
}

// TestDeployKubernetesServiceMonitor: the Service exposes 10089 as
// http-metrics to the pod, the ServiceMonitor scrapes that port of that
// Service, and the job label it produces (the Service's name) is the one the
// alert rules select.
func TestDeployKubernetesServiceMonitor(t *testing.T) {
	manifests := readManifests(t)
	var sts statefulSet
	only(t, manifests, "StatefulSet", &sts)
	var svc service
	svcManifest := only(t, manifests, "Service", &svc)
	var sm struct {
		Spec struct {
			JobLabel string `yaml:"jobLabel"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	only(t, manifests, "ServiceMonitor", &sm)
	var pr struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert string `yaml:"alert"`
					Expr  string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	only(t, manifests, "PrometheusRule", &pr)

	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http-metrics" || svc.Spec.Ports[0].Port != 10089 ||
		(svc.Spec.Ports[0].TargetPort != "http-metrics" && svc.Spec.Ports[0].TargetPort != 10089) {
		t.Errorf("Service ports: want http-metrics 10089 to the pod's http-metrics, got %+v", svc.Spec.Ports)
	}
	if len(svc.Spec.Selector) == 0 || !subset(svc.Spec.Selector, sts.Spec.Template.Metadata.Labels) {
		t.Errorf("Service selector %v does not select the pod labels %v", svc.Spec.Selector, sts.Spec.Template.Metadata.Labels)
	}
	if len(sm.Spec.Selector.MatchLabels) == 0 || !subset(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
		t.Errorf("ServiceMonitor selector %v does not select the Service labels %v", sm.Spec.Selector.MatchLabels, svc.Metadata.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http-metrics" || (sm.Spec.Endpoints[0].Path != "" && sm.Spec.Endpoints[0].Path != "/metrics") {
		t.Errorf("ServiceMonitor endpoints: want port http-metrics, path /metrics; got %+v", sm.Spec.Endpoints)
	}
	if sm.Spec.JobLabel != "" {
		t.Errorf("ServiceMonitor jobLabel %q: the alert rules expect job to be the Service name", sm.Spec.JobLabel)
	}
	jobRe := regexp.MustCompile(`\bjob\s*=~?\s*"([^"]*)"`)
	selectors := 0
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			for _, m := range jobRe.FindAllStringSubmatch(r.Expr, -1) {
				selectors++
				if m[1] != svcManifest.name {
					t.Errorf("rule %s selects job=%q, but the ServiceMonitor's job is the Service name %q", r.Alert, m[1], svcManifest.name)
				}
			}
		}
	}
	if selectors == 0 {
		t.Error("no rule selects a job: ReliabilitydDown should select up{job=...}")
	}
}

// TestDeployKubernetesConfigMap: the example configuration passes
// --config.check.
func TestDeployKubernetesConfigMap(t *testing.T) {
	var cm configMap
	only(t, readManifests(t), "ConfigMap", &cm)
	content, ok := cm.Data["reliability.yml"]
	if !ok {
		t.Fatalf("ConfigMap has no reliability.yml (keys: %v)", mapKeys(cm.Data))
	}
	cfg := filepath.Join(t.TempDir(), "reliability.yml")
	writeFile(t, cfg, content)
	out, err := exec.Command(binary, "--config.check", "--config.file="+cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("--config.check on the ConfigMap's reliability.yml: %v\n%s", err, out)
	}
	// The counts --config.check reports, against the file as written.
	if want := "OK (2 services, 2 probes, 1 SLOs, 2 capacity resources)"; !strings.Contains(string(out), want) {
		t.Errorf("--config.check: want %q, got %s", want, out)
	}
}

// TestDeployKubernetesPrometheusRule: the committed PrometheusRule is what
// the generator makes of the rule files now, and holds every alert and
// recording rule of those files.
func TestDeployKubernetesPrometheusRule(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join(kubernetesDir, "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gen := exec.Command("go", "run", "../deploy/kubernetes/gen", "-out", "-")
	generated, err := gen.Output()
	if err != nil {
		t.Fatalf("go run ../deploy/kubernetes/gen: %v\n%s", err, stderrOf(err))
	}
	if !bytes.Equal(committed, generated) {
		t.Fatalf("deploy/kubernetes/prometheusrule.yaml is stale; regenerate it from the repository root with\n\tgo run ./deploy/kubernetes/gen\nand commit the result")
	}

	// Independently of the generator: every rule name in the rule files, in
	// order, is in the PrometheusRule, in order.
	files, err := filepath.Glob("../deploy/prometheus/*.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no deploy/prometheus/*.rules.yml")
	}
	type rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
				For    string `yaml:"for"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var want []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r rules
		if err := yaml.Unmarshal(data, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range r.Groups {
			for _, x := range g.Rules {
				want = append(want, g.Name+"/"+x.Alert+x.Record+" for "+x.For+": "+x.Expr)
			}
		}
	}
	var pr struct {
		Spec rules `yaml:"spec"`
	}
	if err := yaml.Unmarshal(committed, &pr); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range pr.Spec.Groups {
		for _, x := range g.Rules {
			got = append(got, g.Name+"/"+x.Alert+x.Record+" for "+x.For+": "+x.Expr)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("PrometheusRule rules differ from the rule files:\nwant %q\ngot  %q", want, got)
	}
	for _, alert := range []string{"ReliabilitydDown", "SLOErrorBudgetBurnPage", "ProbeFailing"} {
		if !bytes.Contains(committed, []byte("alert: "+alert+"\n")) {
			t.Errorf("PrometheusRule lacks alert %s", alert)
		}
	}

	// spec.groups, written out as a rule file, is one Prometheus accepts:
	// the re-encoding kept expressions and templates intact.
	t.Run("promtool", func(t *testing.T) {
		promtool := lookPromtool(t)
		var doc struct {
			Spec map[string]any `yaml:"spec"`
		}
		if err := yaml.Unmarshal(committed, &doc); err != nil {
			t.Fatal(err)
		}
		data, err := yaml.Marshal(doc.Spec)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "prometheusrule.rules.yml")
		writeFile(t, file, string(data))
		out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool check rules on the PrometheusRule's groups: %v\n%s", err, out)
		}
		if want := fmt.Sprintf("SUCCESS: %d rules found", len(want)); !strings.Contains(string(out), want) {
			t.Errorf("promtool check rules: want %q, got %s", want, out)
		}
	})
}

// dockerInstruction is one instruction of the Dockerfile, continuation lines
// joined.
type dockerInstruction struct {
	cmd  string // upper case
	args string
}

func readDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstruction
	var cur strings.Builder
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, dockerInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends in a continuation: %q", cur.String())
	}
	return out
}

// TestDeployDockerfile: a Go build stage of the go.mod's Go version with cgo
// off, trimmed paths and the version stamped; a final stage on an empty or
// distroless base that runs as a non-root user, exposes 10089 and keeps its
// state on the /data volume.
func TestDeployDockerfile(t *testing.T) {
	instructions := readDockerfile(t)
	var stages [][]dockerInstruction
	for _, in := range instructions {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("%s before the first FROM", in.cmd)
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	if want := "golang:" + string(m[1]) + " "; !strings.Contains(build[0].args+" ", want) {
		t.Errorf("build stage FROM %q: want the go.mod's Go, %s", build[0].args, strings.TrimSpace(want))
	}
	var goBuild string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			goBuild = in.args
		}
	}
	if goBuild == "" {
		t.Fatal("no RUN ... go build in the build stage")
	}
	for _, want := range []string{
		"CGO_ENABLED=0", "-trimpath", "./cmd/reliabilityd",
		"-X github.com/prometheus/common/version.Version=${VERSION}",
		"-X github.com/prometheus/common/version.Revision=${REVISION}",
		"-X github.com/prometheus/common/version.Branch=${BRANCH}",
		"-X github.com/prometheus/common/version.BuildUser=${BUILD_USER}",
		"-X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}",
	} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("go build lacks %q: %s", want, goBuild)
		}
	}
	for _, arg := range []string{"VERSION", "REVISION", "BRANCH", "BUILD_USER", "BUILD_DATE"} {
		if !slices.ContainsFunc(build, func(in dockerInstruction) bool {
			return in.cmd == "ARG" && slices.ContainsFunc(strings.Fields(in.args), func(f string) bool { return f == arg || strings.HasPrefix(f, arg+"=") })
		}) {
			t.Errorf("build stage does not declare ARG %s", arg)
		}
	}

	var base string
	for _, f := range strings.Fields(final[0].args) {
		if !strings.HasPrefix(f, "--") { // --platform=...
			base = f
			break
		}
	}
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %q: want scratch or gcr.io/distroless/static", base)
	}
	last := map[string]string{} // the final stage's last instruction of each kind
	for _, in := range final {
		last[in.cmd] = in.args
	}
	user, _, _ := strings.Cut(last["USER"], ":")
	if uid, err := strconv.Atoi(user); (err != nil && user != "nonroot") || (err == nil && uid == 0) || user == "" {
		t.Errorf("final stage USER %q: want a non-root user (65534 or nonroot)", last["USER"])
	}
	if !slices.Contains(strings.Fields(last["EXPOSE"]), "10089") {
		t.Errorf("EXPOSE %q: want 10089", last["EXPOSE"])
	}
	if !strings.Contains(last["VOLUME"], "/data") {
		t.Errorf("VOLUME %q: want /data", last["VOLUME"])
	}
	if !strings.HasPrefix(last["ENTRYPOINT"], `["`) {
		t.Errorf("ENTRYPOINT %q: want the exec form, so that SIGTERM reaches the daemon", last["ENTRYPOINT"])
	}
	// The default arguments are real flags and keep the state on the volume.
	var cmd []string
	if err := yaml.Unmarshal([]byte(last["CMD"]), &cmd); err != nil {
		t.Fatalf("CMD %q: %v", last["CMD"], err)
	}
	if flagValues(t, cmd)["storage.path"] != "/data" {
		t.Errorf("CMD %q: want --storage.path=/data", last["CMD"])
	}

	// .dockerignore keeps .git out but not what the build needs.
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.Lines(string(ignore)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.Trim(line, "/"))
		}
	}
	if !slices.Contains(patterns, ".git") {
		t.Error(".dockerignore does not exclude .git")
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "collector", "config", "slo", "cmd/reliabilityd/templates"} {
		for _, p := range patterns {
			if ok, _ := path.Match(p, needed); ok {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", p, needed)
			}
		}
	}
}

// unitDirectives parses a systemd unit into section -> key -> values (a key
// may repeat), continuation lines joined.
func unitDirectives(t *testing.T, data string) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	var cur strings.Builder
	for line := range strings.Lines(data) {
		line = strings.TrimSpace(line)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		full := cur.String()
		cur.Reset()
		if strings.HasPrefix(full, "[") && strings.HasSuffix(full, "]") {
			section = strings.Trim(full, "[]")
			out[section] = map[string][]string{}
			continue
		}
		key, value, ok := strings.Cut(full, "=")
		if !ok || section == "" {
			t.Fatalf("unit: cannot parse %q", full)
		}
		out[section][key] = append(out[section][key], strings.Join(strings.Fields(value), " "))
	}
	return out
}

// TestDeploySystemdUnit: the unit runs the daemon unprivileged with its
// configuration and state where the packaging puts them, reloads with
// SIGHUP, carries the hardening, and (when systemd-analyze is installed)
// passes systemd-analyze verify.
func TestDeploySystemdUnit(t *testing.T) {
	const unitPath = "../deploy/systemd/reliabilityd.service"
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := unitDirectives(t, string(data))
	svc := unit["Service"]
	if svc == nil || unit["Unit"] == nil || unit["Install"] == nil {
		t.Fatalf("want [Unit], [Service] and [Install] sections, got %v", mapKeys(unit))
	}
	for _, d := range []struct{ key, want string }{
		{"Type", "simple"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Restart", "on-failure"},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectKernelLogs", "yes"},
		{"ProtectControlGroups", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX AF_NETLINK"},
		{"LockPersonality", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"SystemCallArchitectures", "native"},
		{"CapabilityBoundingSet", ""},
	} {
		if got := svc[d.key]; len(got) != 1 || got[0] != d.want {
			t.Errorf("[Service] %s: want exactly %q, got %q", d.key, d.want, got)
		}
	}
	// Either a fixed user or a dynamic one; a dynamic one needs the state
	// directory systemd creates for it.
	if got := svc["User"]; len(got) != 1 || got[0] != "reliabilityd" {
		t.Errorf("[Service] User: want reliabilityd, got %q", got)
	}
	if slices.Equal(svc["DynamicUser"], []string{"yes"}) && !slices.Equal(svc["StateDirectory"], []string{"reliabilityd"}) {
		t.Errorf("DynamicUser=yes without StateDirectory=reliabilityd: the state would have nowhere to go")
	}

	if len(svc["ExecStart"]) != 1 {
		t.Fatalf("[Service] ExecStart: want one, got %q", svc["ExecStart"])
	}
	execStart := strings.Fields(svc["ExecStart"][0])
	if execStart[0] != "/usr/local/bin/reliabilityd" {
		t.Errorf("ExecStart runs %q, want /usr/local/bin/reliabilityd", execStart[0])
	}
	flags := flagValues(t, execStart[1:])
	if flags["config.file"] != "/etc/reliabilityd/reliability.yml" || flags["storage.path"] != "/var/lib/reliabilityd" {
		t.Errorf("ExecStart flags: want --config.file=/etc/reliabilityd/reliability.yml --storage.path=/var/lib/reliabilityd, got %v", flags)
	}
	// The flags must be the daemon's: run them with --config.check on a
	// valid configuration.
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "reliability.yml")
	writeFile(t, cfg, "services: [{name: s, probes: [{name: p, tcp: {address: '127.0.0.1:1'}}]}]\n")
	args := []string{"--config.check"}
	for name := range flags {
		v := flags[name]
		switch name {
		case "config.file":
			v = cfg
		case "storage.path":
			v = filepath.Join(tmp, "data")
		}
		args = append(args, "--"+name+"="+v)
	}
	if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
		t.Errorf("reliabilityd %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not found: not running systemd-analyze verify")
		return
	}
	// verify insists that ExecStart's program exists: point it at the
	// binary under test. It reports unknown keys and bad values as
	// warnings with exit code 0, so any line about the unit fails the test.
	copyPath := filepath.Join(t.TempDir(), "reliabilityd.service")
	writeFile(t, copyPath, strings.ReplaceAll(string(data), "/usr/local/bin/reliabilityd", binary))
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "reliabilityd.service") {
			t.Errorf("systemd-analyze verify: %s", strings.TrimSpace(line))
		}
	}
}

// quantity parses the Kubernetes quantities the manifests use (plain
// numbers, milli, binary suffixes) into a float: cores or bytes.
func quantity(s string) (float64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, u := range []struct {
		suffix string
		factor float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"m", 1e-3}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			return f * u.factor, err
		}
	}
	return strconv.ParseFloat(s, 64)
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func mapKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func stderrOf(err error) string {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return string(ee.Stderr)
	}
	return ""
}
