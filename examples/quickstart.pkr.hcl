# The quickstart, in HCL2: the same build as quickstart.json, which plans
# byte for byte the same.

packer {
  required_plugins {
    outscale = {
      version = "~> 1"
      source  = "github.com/outscale/outscale"
    }
  }
}

variable "version" {
  type    = string
  default = "1.0.0"
}

source "outscale-bsu" "quickstart" {
  custom_endpoint_oapi = "sim://state/sim"
  vm_type              = "tinav5.c2r4p2"
  source_omi_filter {
    filters = {
      image-name = "Ubuntu-22.04-*"
    }
    owners      = ["Outscale"]
    most_recent = true
  }
  communicator    = "ssh"
  omi_name        = "quickstart-${var.version}"
  omi_description = "Built by osci from {{ .SourceOMIName }}"
  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = 12
    volume_type           = "gp2"
    delete_on_vm_deletion = true
  }
  tags = {
    Name    = "quickstart"
    version = var.version
    source  = "{{ .SourceOMI }}"
  }
  snapshot_tags = {
    role = "root"
  }
  ssh_username = "outscale"
  ssh_timeout  = "2m"
}

build {
  sources = ["source.outscale-bsu.quickstart"]

  provisioner "shell" {
    inline = [
      "echo 'Welcome to a golden image built by osci (${var.version})' > /etc/motd",
      "uname -sr",
    ]
  }

  provisioner "file" {
    source      = "files/quickstart"
    destination = "/etc/"
  }

  provisioner "shell-local" {
    inline = ["echo \"built $PACKER_BUILD_NAME from $SourceOMI in $BuildRegion\""]
  }
}
